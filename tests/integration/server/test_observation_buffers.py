"""Who holds queued notifications, over real UDP with a simulated device: the inventory's own handles follow
the events and queue nothing however long the device notifies; an operator's handle on the same CoAP
observation keeps at most ``maxsize`` (the oldest dropped) for its iterator; an unbuffered handle that starts
iterating gets what comes after."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

from lwm2m_server.coap.observation import Observation
from lwm2m_server.config import load_settings
from lwm2m_server.events import Event
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.integration.server.conftest import until, wait_event

STATE = LwM2MPath(5, 0, 3)
COUNT = 70  # more than a handle's queue (64)


def _state_is(value: int, event: Event) -> bool:
    return bool(event.data["values"] == {"/5/0/3": value})


async def test_inventory_handles_queue_nothing_operator_handles_are_bounded(tmp_path: Path) -> None:
    settings = load_settings(None, environ={}, overrides={"server": {
        "coap_host": "127.0.0.1", "coap_port": 0, "data_dir": tmp_path / "data", "request_timeout_s": 5.0}})
    server = LwM2MServer(settings)
    await server.start()
    device = SimulatedDevice(DeviceConfig(endpoint="buf-1"))
    try:
        notes = server.events.subscribe(types={"notification"})
        await device.start(f"coap://127.0.0.1:{server.coap_port}")

        def inventory_handles() -> list[Observation]:
            return [o for o in server.client.observations("buf-1") if o.path == STATE and o.owner == "inventory"]

        await until(lambda: bool(inventory_handles()))
        inventory = inventory_handles()[0]
        operator = await server.client.observe("buf-1", STATE, owner="operator")
        late = await server.client.observe("buf-1", STATE, owner="late", buffered=False)
        assert device.objects is not None
        for n in range(1, COUNT + 1):
            device.objects.set(STATE, n % 4)
            await wait_event(notes, partial(_state_is, n % 4))
        assert inventory.notifications == operator.notifications == late.notifications >= COUNT
        assert inventory.queued == 0 and late.queued == 0
        assert operator.queued == 64
        assert inventory.value == operator.value == {STATE: COUNT % 4}

        following = asyncio.ensure_future(late.next(5))  # from now on, the late handle queues
        await asyncio.sleep(0.05)
        device.objects.set(STATE, 1 if COUNT % 4 != 1 else 2)
        assert await following == {STATE: 1 if COUNT % 4 != 1 else 2}
        assert inventory.queued == 0
        first = await operator.next(1)  # the oldest kept: the 71st-newest was dropped
        assert first == {STATE: (COUNT + 1 - 64 + 1) % 4}
    finally:
        await device.stop()
        await server.stop()
