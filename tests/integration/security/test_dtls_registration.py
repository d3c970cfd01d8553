"""Sim devices over DTLS PSK against the real coaps listener: register, read/write/observe over the same
session, security mode on the registration; wrong key, unknown identity, name/identity mismatch and plain CoAP
for a secured endpoint are refused (4.03 + audit, or a failed handshake), and the server keeps serving."""

from __future__ import annotations

import asyncio

import pytest

from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from simulator.device import RegistrationFailed, SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.integration.security.conftest import coaps_uri, psk_device
from tests.integration.server.conftest import until, wait_event

P = LwM2MPath.parse
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


async def test_psk_device_registers_and_is_managed_over_its_session(server: LwM2MServer) -> None:
    await server.credentials.add("dtls-1", "id-dtls-1", KEY)
    sub = server.events.subscribe(types={"inventory"})
    dev = psk_device("dtls-1", "id-dtls-1", KEY)
    await dev.start(coaps_uri(server))
    try:
        reg = server.registry.get("dtls-1")
        assert reg is not None and reg.security == "psk" and reg.port == dev.port
        assert reg.to_dict()["security"] == "psk"
        await wait_event(sub, lambda e: e.endpoint == "dtls-1")  # inventory read /3/0, /32001/0, /5/0 over DTLS
        profile = await server.profile("dtls-1")
        assert profile is not None and profile.hardware_known and "coaps" in profile.protocols
        await until(lambda: len(server.client.observations("dtls-1")) == 3)
        assert await server.client.read("dtls-1", "/3/0/0") == {P("/3/0/0"): dev.config.manufacturer}
        await server.client.write("dtls-1", "/1/0/1", {P("/1/0/1"): 120})
        assert dev.objects is not None and dev.objects.get(P("/1/0/1")) == 120
        notes = server.events.subscribe(types={"notification"})
        dev.objects.set(P("/5/0/3"), 1)  # an observed resource: the notification comes over the session
        ev = await wait_event(notes, lambda e: e.data["path"] == "/5/0/3")
        assert ev.endpoint == "dtls-1"
        assert server.dtls_stats.snapshot().get("handshake_ok") == 1  # one session carried all of it
        dev.trigger_update()
        await until(lambda: dev.updates >= 1)
    finally:
        await dev.stop()
    await until(lambda: server.registry.get("dtls-1") is None)


async def test_identity_bound_to_another_endpoint_gets_403_and_audit(server: LwM2MServer) -> None:
    await server.credentials.add("owner", "id-owner", KEY)
    dev = psk_device("impostor", "id-owner", KEY)  # right key, but a name that is not the identity's
    with pytest.raises(RegistrationFailed, match=r"4\.03"):
        await dev.register_once(coaps_uri(server))
    assert server.registry.get("impostor") is None
    entries = await server.audit.entries(action_prefix="device.register_refused")
    assert [(e["endpoint"], e["detail"]["identity"]) for e in entries] == [("impostor", "id-owner")]
    await dev.stop(deregister=False)


async def test_secured_endpoint_over_plain_coap_gets_403(server: LwM2MServer) -> None:
    await server.credentials.add("locked", "id-locked", KEY)
    dev = SimulatedDevice(DeviceConfig(endpoint="locked"))
    with pytest.raises(RegistrationFailed, match=r"4\.03"):
        await dev.register_once(f"coap://127.0.0.1:{server.coap_port}")
    await dev.stop(deregister=False)
    assert server.registry.get("locked") is None
    assert server.counters["refused"] == 1


@pytest.mark.parametrize("identity", ["id-w", "nobody"])
async def test_wrong_key_or_unknown_identity_fails_the_handshake(server: LwM2MServer, identity: str) -> None:
    await server.credentials.add("w", "id-w", KEY)
    good = psk_device("good", "id-good", KEY)
    await server.credentials.add("good", "id-good", KEY)
    await good.start(coaps_uri(server))
    bad = psk_device("w", identity, bytes(16))  # wrong key (or identity the server does not know)
    try:
        with pytest.raises((TimeoutError, Exception)) as info:
            await asyncio.wait_for(bad.register_once(coaps_uri(server)), 20.0)
        assert not isinstance(info.value, RegistrationFailed)  # never got as far as a CoAP answer
        assert server.registry.get("w") is None
        failed = server.dtls_stats.snapshot()
        assert failed.get("handshake_failed", 0) + failed.get("handshake_expired", 0) >= (identity == "nobody")
        assert await server.client.read("good", "/3/0/0")  # the other device is still served
    finally:
        await bad.stop(deregister=False)
        await good.stop()
