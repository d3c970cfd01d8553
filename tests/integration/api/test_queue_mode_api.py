"""Queue-mode devices through the API: sleeping state and filters, queued reads, 503 when the queue is full."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.api.conftest import running_stack, wait_for
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
