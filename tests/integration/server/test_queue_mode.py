"""Queue mode: requests to a sleeping device wait in a persisted FIFO and are flushed in order on its next uplink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.coap.errors import DeviceNotRegistered, QueueFull
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from tests.integration.server.conftest import make_settings, until, wait_event
from tests.integration.server.testdevice import TestDevice


@pytest.fixture
async def qserver(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    settings = make_settings(tmp_path, queue_mode_window_s=0.3, max_queued_requests=4)
    async with LwM2MServer(settings, inventory=False) as srv:
        yield srv


@pytest.fixture
async def qdev() -> AsyncIterator[TestDevice]:
    dev = TestDevice("sleepy")
    await dev.start()
    yield dev
    await dev.stop()


async def test_fifo_flushes_in_order_on_wake(qserver: LwM2MServer, qdev: TestDevice) -> None:
    sub = qserver.events.subscribe(types={"sleeping", "awake"})
    await qdev.register(qserver.coap_port, "lt=60&lwm2m=1.1&Q")
    assert qserver.is_awake("sleepy")
    await wait_event(sub, lambda e: e.type == "sleeping" and e.endpoint == "sleepy")
    assert not qserver.is_awake("sleepy")

    c = qserver.client
    write = asyncio.ensure_future(c.write("sleepy", "/1/0/1", {LwM2MPath(1, 0, 1): 5}))
    await until(lambda: len(qserver.queue.queued("sleepy")) == 1)
    execute = asyncio.ensure_future(c.execute("sleepy", "/3/0/4", "1"))
    await until(lambda: len(qserver.queue.queued("sleepy")) == 2)
    read = asyncio.ensure_future(c.read("sleepy", "/3/0/0"))
    await until(lambda: len(qserver.queue.queued("sleepy")) == 3)
    handle = await c.submit("sleepy", "DELETE", "/1/0")
    with pytest.raises(QueueFull):
        await c.raw_request("sleepy", "GET", "/3/0/1")
    await asyncio.sleep(0.1)
    assert qdev.received == [] and not write.done()
    rows = await qserver.store.fetchall("SELECT endpoint FROM queued_requests ORDER BY seq")
    assert [r["endpoint"] for r in rows] == ["sleepy"] * 4

    assert str(await qdev.update(qserver.coap_port)) == "2.04 Changed"
    await wait_event(sub, lambda e: e.type == "awake")
    await asyncio.wait_for(asyncio.gather(write, execute, read), 5)
    assert read.result() == {LwM2MPath(3, 0, 0): "hello"}
    assert (await asyncio.wait_for(handle.result(), 5)).code == "2.02"
    assert [(r.method, r.path) for r in qdev.received] == [
        ("PUT", "/1/0/1"), ("POST", "/3/0/4"), ("GET", "/3/0/0"), ("DELETE", "/1/0")]  # fmt: skip
    assert qdev.received[1].payload == b"1"
    await qserver.store.flush()
    await until(lambda: qserver.queue.queued("sleepy") == [])
    assert await qserver.store.fetchall("SELECT * FROM queued_requests") == []

    # awake now: requests go straight out
    assert await c.read("sleepy", "/3/0/0") == {LwM2MPath(3, 0, 0): "hello"}


async def test_deregister_fails_queued_requests(qserver: LwM2MServer, qdev: TestDevice) -> None:
    await qdev.register(qserver.coap_port, "lt=60&b=UQ")
    await until(lambda: not qserver.is_awake("sleepy"))
    pending = asyncio.ensure_future(qserver.client.read("sleepy", "/3/0/0"))
    await until(lambda: len(qserver.queue.queued("sleepy")) == 1)
    assert qdev.context is not None
    reg = qserver.registry.get("sleepy")
    assert reg is not None
    await qserver.registry.deregister(reg.reg_id)
    with pytest.raises(DeviceNotRegistered):
        await asyncio.wait_for(pending, 5)


async def test_queue_survives_restart(tmp_path: Path, qdev: TestDevice) -> None:
    settings = make_settings(tmp_path, queue_mode_window_s=0.3)
    async with LwM2MServer(settings, inventory=False) as srv:
        port = srv.coap_port
        await qdev.register(port, "lt=60&lwm2m=1.1&Q")
        await until(lambda: not srv.is_awake("sleepy"))
        await srv.client.submit("sleepy", "PUT", "/1/0/1", b"7", content_format=0)
        await srv.client.submit("sleepy", "POST", "/3/0/4")
    settings = make_settings(tmp_path, queue_mode_window_s=0.3, coap_port=port)
    async with LwM2MServer(settings, inventory=False) as srv:
        assert [i.spec.path for i in srv.queue.queued("sleepy")] == ["/1/0/1", "/3/0/4"]
        sub = srv.events.subscribe(types={"queued_result"})
        assert str(await qdev.update(port)) == "2.04 Changed"
        first = await wait_event(sub, lambda e: True)
        second = await wait_event(sub, lambda e: True)
        assert (first.data["path"], first.data["code"]) == ("/1/0/1", "2.04")
        assert (second.data["path"], second.data["code"]) == ("/3/0/4", "2.04")
    assert [(r.method, r.path, r.payload) for r in qdev.received] == [("PUT", "/1/0/1", b"7"), ("POST", "/3/0/4", b"")]
