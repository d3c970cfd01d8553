"""Device faults: silence, error codes, unrequested or unknown formats — typed errors and no leaked tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiocoap.numbers.codes import Code

from lwm2m_server.coap.errors import BadResponse, DeviceError, DeviceTimeout
from lwm2m_server.protocol.codecs import ContentFormat
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import until, wait_event
from tests.integration.server.testdevice import TestDevice


async def _settled_tasks(baseline: set[asyncio.Task[object]], timeout: float = 3.0) -> set[asyncio.Task[object]]:
    """Tasks that are still alive and were not there before (waits for stragglers to finish)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        extra = {t for t in asyncio.all_tasks() if t not in baseline and not t.done()}
        extra.discard(asyncio.current_task())  # type: ignore[arg-type]
        if not extra or loop.time() > deadline:
            return extra
        await asyncio.sleep(0.05)


@pytest.fixture
async def device() -> AsyncIterator[TestDevice]:
    dev = TestDevice("faulty")
    await dev.start()
    yield dev
    await dev.stop()


async def test_silent_device_times_out_without_leaks(server: LwM2MServer) -> None:
    sub = server.events.subscribe(types={"inventory"})
    peer = await wire.UdpPeer.open(server.coap_port, answer_requests=False)
    try:
        peer.send(wire.register(0x1234, b"\x01", ["ep=silent", "lt=60", "lwm2m=1.1"], b"</1/0>,</3/0>,</5/0>"))
        ack = await peer.recv()
        assert (ack.code_str, ack.mid, ack.option(wire.LOCATION_PATH)[0]) == ("2.01", 0x1234, b"rd")
        server.inventory.timeout = 0.5  # type: ignore[union-attr]
        baseline = set(asyncio.all_tasks())
        with pytest.raises(DeviceTimeout) as err:
            await server.client.read("silent", "/3/0/0", timeout=0.4)
        assert err.value.coap_code == "timeout"
        # inventory gave up too (the Register above started it) and marked the hardware unknown
        ev = await wait_event(sub, lambda e: e.endpoint == "silent", timeout=6)
        assert ev.data["hardware_known"] is False
        assert await _settled_tasks(baseline) == set()
        assert {r.code for r in peer.requests} == {wire.GET}  # it was asked (and retried), it never answered
    finally:
        peer.close()


async def test_error_codes_are_typed(server: LwM2MServer, device: TestDevice) -> None:
    device.mode, device.error_code = "error", Code.FORBIDDEN
    await device.register(server.coap_port)
    baseline = set(asyncio.all_tasks())
    for op in (
        server.client.read("faulty", "/3/0/0"),
        server.client.write("faulty", "/1/0/1", {LwM2MPath(1, 0, 1): 3}),
        server.client.execute("faulty", "/3/0/4"),
        server.client.delete("faulty", "/1/0"),
    ):
        with pytest.raises(DeviceError) as err:
            await op
        assert err.value.coap_code == "4.03"
    device.error_code = Code.INTERNAL_SERVER_ERROR
    with pytest.raises(DeviceError) as err:
        await server.client.read("faulty", "/3/0")
    assert err.value.coap_code == "5.00"
    assert await _settled_tasks(baseline) == set()


async def test_unrequested_format_is_decoded_by_its_content_format(server: LwM2MServer, device: TestDevice) -> None:
    await device.register(server.coap_port)
    device.mode = "wrong_format"
    got = await server.client.read("faulty", "/3/0/0", content_format=ContentFormat.TLV)
    assert device.received[-1].accept == ContentFormat.TLV
    assert got == {LwM2MPath(3, 0, 0): "json!"}

    device.mode = "garbage_format"
    baseline = set(asyncio.all_tasks())
    with pytest.raises(BadResponse) as err:
        await server.client.read("faulty", "/3/0/0")
    assert err.value.content_format == 65000
    assert await _settled_tasks(baseline) == set()
    await until(lambda: True)


async def test_a_device_answer_with_a_duplicate_path_is_a_bad_response(server: LwM2MServer, device: TestDevice) -> None:
    await device.register(server.coap_port)
    device.mode = "duplicate"
    with pytest.raises(BadResponse, match="duplicate path /3/0/0") as err:
        await server.client.read("faulty", "/3/0/0")
    assert err.value.content_format == ContentFormat.SENML_JSON
    device.mode = "ok"
    got = await server.client.read("faulty", "/3/0/0", content_format=ContentFormat.TEXT)
    assert got == {LwM2MPath(3, 0, 0): "hello"}  # and the server keeps serving
