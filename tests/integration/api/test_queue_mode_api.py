"""Queue-mode devices through the API: sleeping state and filters, queued reads, 503 when the queue is full."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiocoap

from tests.integration.api.conftest import Stack, running_stack, wait_for
from tests.integration.api.sse import sse


async def test_sleeping_device_queue_and_wake_up(tmp_path: Path) -> None:
    async with running_stack(tmp_path, queue_mode_window_s=0.8, max_queued_requests=1) as stack:
        await stack.add_device("awake-1", version="1.1")
        device = await stack.add_device("nbiot-1", version="1.1", binding="UQ", queue_awake_s=1.0, queue_sleep_s=60.0)

        async def asleep() -> bool:
            return bool((await stack.http.get("/api/devices/nbiot-1")).json()["sleeping"])

        await wait_for(asleep, 5.0, "nbiot-1 to be reported sleeping")
        listed = (await stack.http.get("/api/devices", params={"sleeping": "true"})).json()
        assert [i["endpoint"] for i in listed["items"]] == ["nbiot-1"]
        online = (await stack.http.get("/api/devices", params={"online": "true"})).json()
        assert [i["endpoint"] for i in online["items"]] == ["awake-1"]
        detail = (await stack.http.get("/api/devices/nbiot-1")).json()
        assert detail["queue_mode"] is True and detail["online"] is False

        async with sse(stack.http, endpoint="nbiot-1") as events:
            queued = asyncio.create_task(stack.http.get("/api/devices/nbiot-1/3/0/0", params={"timeout": "5"}))

            async def in_queue() -> bool:
                return len(stack.server.queue.queued("nbiot-1")) == 1

            await wait_for(in_queue, 5.0, "the read to be queued")
            full = await stack.http.get("/api/devices/nbiot-1/3/0/1")
            assert full.status_code == 503, full.text
            assert full.json()["error"] == "queue_full"

            device.trigger_update()  # the device wakes up: the queue is flushed
            await events.next(event="awake", timeout=10.0)
            response = await asyncio.wait_for(queued, 10.0)
            assert response.status_code == 200, response.text
            assert response.json()["value"] == "TinyMLaaS Sim"
            await events.next(event="sleeping", timeout=10.0)


class _Silent(asyncio.DatagramProtocol):
    """A UDP socket that swallows every datagram: the device's address after its firmware hung."""


async def _asleep(stack: Stack, endpoint: str) -> bool:
    return bool((await stack.http.get(f"/api/devices/{endpoint}")).json()["sleeping"])


async def test_observe_on_a_sleeping_device_times_out_from_its_wake_up(tmp_path: Path) -> None:
    """The observe waits for the wake-up, then gets ``timeout`` seconds (not forever): 504."""
    async with running_stack(tmp_path, queue_mode_window_s=0.5) as stack:
        device = await stack.add_device("nbiot-obs", version="1.1", binding="UQ", queue_awake_s=0.5,
                                        queue_sleep_s=60.0)
        await wait_for(lambda: _asleep(stack, "nbiot-obs"), 5.0, "nbiot-obs to sleep")
        assert device.registration_location is not None
        reg_id, port = device.registration_location[-1], device.port
        await device.stop(deregister=False)  # the device hangs: it will send one more Update, answer nothing
        del stack.devices["nbiot-obs"]
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            _Silent, local_addr=("127.0.0.1", port))
        try:
            observe = asyncio.create_task(
                stack.http.post("/api/devices/nbiot-obs/3/0/9/observe", params={"timeout": "1"}))
            await asyncio.sleep(1.5)
            assert not observe.done()  # asleep: the timeout only starts at the wake-up
            before = stack.server.client.stats.get("out", "GET", "timeout")

            update = aiocoap.Message(mtype=aiocoap.CON, mid=4242, token=b"\x42", code=aiocoap.POST,
                                     uri_path=("rd", reg_id))
            transport.sendto(update.encode(), ("127.0.0.1", stack.server.coap_port))
            response = await asyncio.wait_for(observe, 10.0)
            assert response.status_code == 504, response.text
            assert response.json()["error"] == "timeout"
            assert stack.server.client.stats.get("out", "GET", "timeout") == before + 1
            assert [o for o in stack.server.client.observations("nbiot-obs") if str(o.path) == "/3/0/9"] == []
        finally:
            transport.close()


async def test_observe_on_a_sleeping_device_ends_when_it_deregisters(tmp_path: Path) -> None:
    async with running_stack(tmp_path, queue_mode_window_s=0.5) as stack:
        device = await stack.add_device("nbiot-gone", version="1.1", binding="UQ", queue_awake_s=0.5,
                                        queue_sleep_s=60.0)
        await wait_for(lambda: _asleep(stack, "nbiot-gone"), 5.0, "nbiot-gone to sleep")
        observe = asyncio.create_task(stack.http.post("/api/devices/nbiot-gone/3/0/9/observe"))
        await asyncio.sleep(0.3)
        assert not observe.done()
        await device.stop()  # De-register while the observe waits for the wake-up
        del stack.devices["nbiot-gone"]
        response = await asyncio.wait_for(observe, 10.0)
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
