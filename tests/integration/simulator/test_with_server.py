"""Simulated devices against the real LwM2MServer: the device-side behaviours the server relies on
(keeping registrations alive, queue-mode sleep/wake, reboot from a new port, lifetime changes, fleets).
Every DeviceClient operation for 1.0/1.1 devices is covered in tests/integration/server/test_device_ops.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from simulator.device import SimulatedDevice
from simulator.fleet import Fleet
from simulator.profiles import DeviceConfig
from tests.integration.server.conftest import make_settings, until, wait_event

P = LwM2MPath.parse
REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(make_settings(tmp_path / "data", queue_mode_window_s=1.0))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def devices() -> AsyncIterator[list[SimulatedDevice]]:
    started: list[SimulatedDevice] = []
    yield started
    for d in started:
        await d.stop()


async def start(server: LwM2MServer, devices: list[SimulatedDevice], **kw: object) -> SimulatedDevice:
    kw.setdefault("endpoint", f"dev{len(devices)}")
    device = SimulatedDevice(DeviceConfig(**kw))  # type: ignore[arg-type]
    devices.append(device)
    await asyncio.wait_for(device.start(f"coap://127.0.0.1:{server.coap_port}"), 10)
    return device


async def test_updates_keep_a_short_lifetime_alive(server: LwM2MServer, devices: list[SimulatedDevice]) -> None:
    sub = server.events.subscribe(types={"expired", "updated"})
    device = await start(server, devices, lifetime=2)  # Update every 1.5 s
    await wait_event(sub, lambda e: e.type == "updated" and e.endpoint == device.endpoint, timeout=5)
    await asyncio.sleep(3.0)  # well past the 2 s lifetime
    reg = server.registry.get(device.endpoint)
    assert reg is not None and reg.lifetime == 2
    assert device.updates >= 2


async def test_stop_deregisters(server: LwM2MServer, devices: list[SimulatedDevice]) -> None:
    device = await start(server, devices, lwm2m_version="1.0")
    assert device.endpoint in server.registry
    sub = server.events.subscribe(types={"deregistered"})
    await device.stop()
    devices.clear()
    await wait_event(sub, lambda e: e.endpoint == device.endpoint)
    assert device.endpoint not in server.registry


async def test_reboot_registers_from_a_new_port_and_stays_manageable(
    server: LwM2MServer, devices: list[SimulatedDevice]
) -> None:
    device = await start(server, devices)
    old_port = device.port
    reg = server.registry.get(device.endpoint)
    assert reg is not None and reg.port == old_port
    sub = server.events.subscribe(types={"registered"})
    await device.reboot(0.05)
    await wait_event(sub, lambda e: e.endpoint == device.endpoint)
    reg = server.registry.get(device.endpoint)
    assert reg is not None and reg.port == device.port
    content = await server.client.read(device.endpoint, "/3/0/0")
    assert content == {P("/3/0/0"): device.config.manufacturer}


async def test_lifetime_written_by_the_server_comes_back_in_an_update(
    server: LwM2MServer, devices: list[SimulatedDevice]
) -> None:
    device = await start(server, devices, lifetime=60)
    sub = server.events.subscribe(types={"updated"})
    await server.client.write(device.endpoint, "/1/0/1", {P("/1/0/1"): 90})
    await wait_event(sub, lambda e: e.endpoint == device.endpoint)
    reg = server.registry.get(device.endpoint)
    assert reg is not None and reg.lifetime == 90


async def test_queue_mode_device_sleeps_and_gets_queued_requests_on_wake(
    server: LwM2MServer, devices: list[SimulatedDevice]
) -> None:
    device = await start(
        server, devices, binding="UQ", lwm2m_version="1.0", queue_awake_s=1.5, queue_sleep_s=2.0, lifetime=60
    )
    reg = server.registry.get(device.endpoint)
    assert reg is not None and reg.queue_mode
    # The device listens 1.5 s after an uplink, longer than the server's 1.0 s window (as it must).
    await until(lambda: device.asleep, timeout=10)
    updates_before = device.updates
    # Queued by the server while the radio is off, delivered after the device's next Update.
    content = await asyncio.wait_for(server.client.read(device.endpoint, "/32001/0/1"), 15)
    assert content == {P("/32001/0/1"): device.config.profile.ram_free_ml}
    assert device.updates > updates_before, "answered only after waking up"


async def test_a_fleet_shows_up_in_the_inventory(server: LwM2MServer) -> None:
    fleet = Fleet.from_toml(REPO / "config" / "fleet-demo.toml", f"coap://127.0.0.1:{server.coap_port}")
    queue_profiles = {d.endpoint for d in fleet.devices if d.config.queue_mode}
    await fleet.start(wait_registered=20)
    try:
        assert fleet.registered == len(fleet.devices)
        await until(lambda: len(server.registry) == len(fleet.devices), timeout=10)
        for device in fleet.devices:
            if device.endpoint in queue_profiles:
                continue  # profiles of sleeping devices are read on wake-up
            await until_profile(server, device.endpoint)
            profile = await server.profile(device.endpoint)
            assert profile is not None and profile.hardware_known
            assert profile.ram_free_ml == device.config.profile.ram_free_ml
            assert profile.accelerator == device.config.profile.accelerator
            assert profile.fpu == device.config.profile.fpu
    finally:
        await fleet.stop()
    await until(lambda: len(server.registry) == 0, timeout=10)


async def until_profile(server: LwM2MServer, endpoint: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await server.profile(endpoint) is None:
        if loop.time() > deadline:
            raise AssertionError(f"no inventory for {endpoint}")
        await asyncio.sleep(0.05)
