"""Every DeviceClient operation against a real simulated LwM2M client over loopback, for 1.0/TLV and
1.1/SenML-CBOR devices; plus inventory and the observations it establishes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lwm2m_server.coap.errors import DeviceError, DeviceNotRegistered
from lwm2m_server.protocol.codecs import ContentFormat
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.integration.server.conftest import until, wait_event

P = LwM2MPath.parse


@pytest.fixture(params=["1.0", "1.1"])
async def device(request: pytest.FixtureRequest, server: LwM2MServer) -> AsyncIterator[SimulatedDevice]:
    sub = server.events.subscribe(types={"inventory"})
    dev = SimulatedDevice(DeviceConfig(endpoint=f"sim-{request.param}", lwm2m_version=request.param))
    await dev.start(f"coap://127.0.0.1:{server.coap_port}")
    await wait_event(sub, lambda e: e.endpoint == dev.endpoint)
    await until(lambda: len(server.client.observations(dev.endpoint)) == 3)
    try:
        yield dev
    finally:
        await dev.stop()


async def test_inventory_profile_and_observations(server: LwM2MServer, device: SimulatedDevice) -> None:
    profile = await server.profile(device.endpoint)
    hw = device.config.profile
    assert profile is not None and profile.hardware_known
    assert (profile.ram_total, profile.ram_free_ml, profile.flash_total) == (
        hw.ram_total,
        hw.ram_free_ml,
        hw.flash_total,
    )
    assert profile.manufacturer == device.config.manufacturer and profile.firmware_version == "1.0.0"
    assert profile.delivery_method == "both" and profile.protocols == ["coap"]
    assert await server.store.load_profile(device.endpoint) == profile.to_dict()
    observed = sorted(str(o.path) for o in server.client.observations(device.endpoint))
    assert observed == ["/32002/0", "/5/0/3", "/5/0/5"]

    sub = server.events.subscribe(types={"notification"})
    assert device.objects is not None
    device.objects.set(P("/5/0/3"), 1)
    ev = await wait_event(sub, lambda e: e.data["path"] == "/5/0/3")
    assert ev.endpoint == device.endpoint and ev.data["values"] == {"/5/0/3": 1}


async def test_read_write_execute_discover(server: LwM2MServer, device: SimulatedDevice) -> None:
    ep, c = device.endpoint, server.client
    expected = ContentFormat.TLV if device.config.lwm2m_version == "1.0" else ContentFormat.SENML_CBOR
    assert c.negotiated_format(ep, "/3/0") == expected
    raw = await c.raw_request(ep, "GET", "/3/0", accept=expected)
    assert raw.content_format == expected
    whole = await c.read(ep, "/3/0")
    assert whole[P("/3/0/0")] == device.config.manufacturer
    assert await c.read(ep, "/3/0/1") == {P("/3/0/1"): whole[P("/3/0/1")]}
    text = await c.read(ep, "/3/0/0", content_format=ContentFormat.TEXT)
    assert text == {P("/3/0/0"): device.config.manufacturer}

    await c.write(ep, "/1/0/1", {P("/1/0/1"): 120})
    assert device.objects is not None and device.objects.get(P("/1/0/1")) == 120
    await c.write(ep, "/1/0", {P("/1/0/1"): 150, P("/1/0/3"): 7}, partial=True)
    assert (device.objects.get(P("/1/0/1")), device.objects.get(P("/1/0/3"))) == (150, 7)

    executed: list[str] = []
    device.objects.on_execute(3, 4, lambda path, args: executed.append(args))
    await c.execute(ep, "/3/0/4", "0='now',1")
    assert executed == ["0='now',1"]

    links = await c.discover(ep, "/3/0")
    assert "/3/0/0" in {link.target for link in links}
    await c.write_attributes(ep, "/3/0/9", {"pmin": 5, "pmax": 60})
    assert device.site is not None and device.site.observations.attributes[P("/3/0/9")] == {"pmin": 5, "pmax": 60}

    with pytest.raises(DeviceError) as err:
        await c.read(ep, "/3/7")
    assert err.value.coap_code == "4.04"
    with pytest.raises(DeviceError) as err:
        await c.execute(ep, "/3/0/0")
    assert err.value.coap_code == "4.05"
    with pytest.raises(DeviceNotRegistered):
        await c.read("nobody", "/3/0")

    raw = await c.raw_request(ep, "GET", "/3/0/0", accept=ContentFormat.TEXT)
    assert raw.code == "2.05" and raw.payload == device.config.manufacturer.encode()


async def test_create_delete_observe_cancel(server: LwM2MServer, device: SimulatedDevice) -> None:
    ep, c = device.endpoint, server.client
    created = await c.create(ep, "/1", {P("/1/5/0"): 202, P("/1/5/1"): 60, P("/1/5/6"): False, P("/1/5/7"): "U"})
    assert created == P("/1/5")
    assert device.objects is not None and device.objects.get(P("/1/5/1")) == 60
    await c.delete(ep, "/1/5")
    assert 5 not in device.objects.instances(1)

    got: list[tuple[str, LwM2MPath, object]] = []
    obs = await c.observe(ep, "/3/0/9", callback=lambda e, p, content: got.append((e, p, content)))
    assert obs.value == {P("/3/0/9"): device.objects.get(P("/3/0/9"))}
    device.objects.set(P("/3/0/9"), 42)
    assert await obs.next(5.0) == {P("/3/0/9"): 42}
    assert got == [(ep, P("/3/0/9"), {P("/3/0/9"): 42})]
    assert await c.cancel_observe(ep, "/3/0/9") == 1
    assert obs.cancelled and obs not in c.observations(ep)


async def test_read_composite(server: LwM2MServer, device: SimulatedDevice) -> None:
    ep, c = device.endpoint, server.client
    if device.config.lwm2m_version == "1.0":
        with pytest.raises(DeviceError) as err:
            await c.read_composite(ep, ["/3/0/0"])
        assert err.value.coap_code == "unsupported"
        return
    got = await c.read_composite(ep, ["/3/0/0", "/32001/0/0", "/5/0/3"])
    assert got == {P("/3/0/0"): device.config.manufacturer, P("/32001/0/0"): device.config.profile.ram_total,
                   P("/5/0/3"): 0}  # fmt: skip


async def test_reregistration_reestablishes_observations(server: LwM2MServer, device: SimulatedDevice) -> None:
    before = server.client.observations(device.endpoint)  # the handles themselves: ids of freed ones get reused
    sub = server.events.subscribe(types={"registered"})
    await device.reboot(0.05)
    await wait_event(sub, lambda e: e.endpoint == device.endpoint)
    await until(lambda: len(server.client.observations(device.endpoint)) == 3)
    after = server.client.observations(device.endpoint)
    assert not any(new is old for new in after for old in before)
    assert all(old.cancelled for old in before)


async def test_owners_share_one_coap_observation(server: LwM2MServer, device: SimulatedDevice) -> None:
    """Two owners of /3/0/9: one observation on the wire, one event per notification, each handle cancels alone."""
    ep, c = device.endpoint, server.client
    assert device.site is not None and device.objects is not None
    on_device = device.site.observations.active
    before = len(on_device)
    sub = server.events.subscribe(types={"notification"})
    first = await c.observe(ep, "/3/0/9", owner="one")
    second = await c.observe(ep, "/3/0/9", owner="two")
    assert first is not second and second.value == first.value
    assert len([s for s in c.coap_observations(ep) if s.path == P("/3/0/9")]) == 1
    assert len(on_device) == before + 1

    device.objects.set(P("/3/0/9"), 41)
    assert await first.next(5.0) == {P("/3/0/9"): 41} and await second.next(5.0) == {P("/3/0/9"): 41}
    await wait_event(sub, lambda e: e.endpoint == ep and e.data["path"] == "/3/0/9")
    with pytest.raises(TimeoutError):  # one event per notification, not one per owner
        await wait_event(sub, lambda e: e.endpoint == ep and e.data["path"] == "/3/0/9", timeout=0.3)

    assert await c.cancel_observe(ep, "/3/0/9", owner="one") == 1
    assert first.cancelled and not second.cancelled
    device.objects.set(P("/3/0/9"), 40)
    assert await second.next(5.0) == {P("/3/0/9"): 40}
    ev = await wait_event(sub, lambda e: e.endpoint == ep and e.data["path"] == "/3/0/9")
    assert ev.data["values"] == {"/3/0/9": 40}

    second.cancel()
    assert [s for s in c.coap_observations(ep) if s.path == P("/3/0/9")] == []
    for value in range(30, 39):  # the next notification is answered with RST: the device drops it
        device.objects.set(P("/3/0/9"), value)
        with contextlib.suppress(AssertionError):
            await until(lambda: len(on_device) == before, timeout=1.0)
            break
    assert len(on_device) == before


async def test_inventory_observation_survives_another_owner_cancelling(
    server: LwM2MServer, device: SimulatedDevice
) -> None:
    ep, c = device.endpoint, server.client
    other = await c.observe(ep, "/5/0/3", owner="api")
    assert len([s for s in c.coap_observations(ep) if s.path == P("/5/0/3")]) == 1
    assert await c.cancel_observe(ep, "/5/0/3", owner="api") == 1 and other.cancelled
    mine = [o for o in c.observations(ep) if o.path == P("/5/0/3")]
    assert [o.owner for o in mine] == ["inventory"] and not mine[0].cancelled
    assert device.objects is not None
    device.objects.set(P("/5/0/3"), 1)
    assert await mine[0].next(5.0) == {P("/5/0/3"): 1}


async def test_observations_end_cleanly_when_the_device_vanishes(server: LwM2MServer, device: SimulatedDevice) -> None:
    """The device's socket closes without a de-registration: the next request to it gets ICMP port unreachable,
    aiocoap fails every exchange with that address, observations included. Each handle ends with the error, and
    no aiocoap observation task dies with an unretrieved exception (our errback used to cancel the client
    observation aiocoap was cancelling itself: "ClientObservation cancelled twice")."""
    ep, c = device.endpoint, server.client
    handles = c.observations(ep)
    assert len(handles) == 3
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        await device.stop(deregister=False)
        with pytest.raises(DeviceError) as err:
            await c.read(ep, "/3/0")
        assert err.value.coap_code == "network"
        await until(lambda: all(h.cancelled for h in handles))
        assert c.observations(ep) == [] and c.coap_observations(ep) == []
        for _ in range(3):  # let aiocoap's observation tasks finish, then collect them (the report is at GC)
            await asyncio.sleep(0.05)
            gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert [ctx.get("message") for ctx in unhandled] == []
