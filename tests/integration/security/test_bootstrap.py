"""The bootstrap server over real sockets: factory bootstrap PSK → /bs over DTLS → fresh credentials stored and
written → DTLS registration → model installed; a nosec config over plain CoAP; refusals (no config, a wrong DTLS
identity, plain /bs for an endpoint with a bootstrap PSK, a psk config over plain CoAP, a bootstrap identity used
to Register) answered with the right code and audited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap.error
import pytest
from aiocoap import POST, Message

from lwm2m_server.ota.service import OtaService
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from simulator.bootstrap import BootstrapFailed, bootstrap, start_bootstrapped
from simulator.device import RegistrationFailed, SimulatedDevice
from simulator.profiles import DeviceConfig
from simulator.udp import create_context, response_within
from tests.integration.ota.models import KWS, signed_kws_package
from tests.integration.security.conftest import coaps_uri, psk_device, secure_settings

FACTORY_KEY = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    settings = secure_settings(tmp_path)
    settings = settings.model_copy(update={"ota": settings.ota.model_copy(update={"poll_interval_s": 1.0})})
    srv = LwM2MServer(settings)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def plain_uri(server: LwM2MServer) -> str:
    return f"coap://127.0.0.1:{server.coap_port}"


async def audit_actions(server: LwM2MServer, prefix: str = "bootstrap.") -> list[str]:
    return [e["action"] for e in await server.audit.entries(action_prefix=prefix)]


@pytest.mark.skipif(not KWS.exists(), reason="MLPerf Tiny models not available")
async def test_factory_to_bootstrap_to_dtls_to_model(server: LwM2MServer) -> None:
    ep = "bs-dev-1"
    await server.credentials.import_csv(f"{ep},factory-{ep},{FACTORY_KEY.hex()}\n", bootstrap=True)
    await server.bootstrap_configs.put({"endpoint": ep, "server_uri": coaps_uri(server), "lifetime": 120})
    blob, public_key = signed_kws_package(server.settings.server.data_dir)
    ota = OtaService(server)
    await ota.start()
    dev = psk_device(ep, f"factory-{ep}", FACTORY_KEY, server_public_key=public_key)
    try:
        got = await start_bootstrapped(dev, coaps_uri(server))
        # the credential the device was given is the one the server stored (before writing it)
        assert got.identity.startswith("bs-") and server.credentials.psk_for(got.identity.encode()) == got.key
        assert server.credentials.endpoint_for(got.identity) == ep and len(got.key) == 16
        assert (got.server_uri, got.security_mode, got.lifetime, got.binding) == (coaps_uri(server), 0, 120, "U")
        reg = server.registry.get(ep)
        assert reg is not None and reg.security == "psk" and reg.lifetime == 120
        info = await ota.add_package(blob, "model")
        record = await asyncio.wait_for(ota.wait(await ota.start_update(ep, info.sha256, method="push")), 40)
        assert record.phase == "succeeded", record.to_json()
        assert dev.objects is not None
        assert dev.objects.get(LwM2MPath(32002, 0, 2)) == record.progress["model_sha256"]
        await server.bootstrap.drain()
        assert sorted(await audit_actions(server)) == ["bootstrap.config_put", "bootstrap.finished", "bootstrap.start"]
        finished = (await server.audit.entries(action_prefix="bootstrap.finished"))[0]
        assert finished["detail"]["ok"] is True
    finally:
        await dev.stop()
        await ota.stop()


async def test_nosec_bootstrap_over_plain_coap(server: LwM2MServer) -> None:
    await server.bootstrap_configs.put({"endpoint": "plain-1", "server_uri": plain_uri(server),
                                        "security_mode": "nosec", "binding": "UQ", "lifetime": 90})
    dev = SimulatedDevice(DeviceConfig(endpoint="plain-1"))
    try:
        got = await start_bootstrapped(dev, plain_uri(server))
        assert (got.security_mode, got.identity, got.key, got.binding) == (3, "", b"", "UQ")
        reg = server.registry.get("plain-1")
        assert reg is not None and reg.security == "none" and reg.queue_mode and reg.lifetime == 90
    finally:
        await dev.stop()


async def test_bootstrap_sequence_order_and_bytes(server: LwM2MServer) -> None:
    """What reached the device: Delete /0, Delete /1, Write /0/1, Write /1/0, Finish (in that order)."""
    from simulator.bootstrap import BootstrapSite

    await server.bootstrap_configs.put({"endpoint": "order-1", "server_uri": "coap://10.1.2.3:5683",
                                        "security_mode": "nosec", "ssid": 9})
    site = BootstrapSite(server.client.model)
    ctx = await create_context(site, "127.0.0.1", 0)
    try:
        req = Message(code=POST, uri=plain_uri(server))
        req.opt.uri_path, req.opt.uri_query = ("bs",), ("ep=order-1",)
        assert str((await response_within(ctx.request(req), 10)).code) == "2.04 Changed"
        got = await asyncio.wait_for(site.finished, 10)
    finally:
        await ctx.shutdown()
    assert site.log == [("DELETE", "/0"), ("DELETE", "/1"), ("PUT", "/0/1"), ("PUT", "/1/0"), ("POST", "/bs")]
    assert (got.server_uri, got.ssid) == ("coap://10.1.2.3:5683", 9)


async def test_no_config_is_400_and_audited(server: LwM2MServer) -> None:
    with pytest.raises(BootstrapFailed, match=r"4\.00"):
        await bootstrap("nobody", plain_uri(server), timeout=10)
    refused = await server.audit.entries(action_prefix="bootstrap.refused")
    assert refused and refused[0]["endpoint"] == "nobody"
    assert refused[0]["detail"]["reason"] == "no bootstrap config for this endpoint"
    # malformed Bootstrap-Request: no ep= → 4.00, the server keeps serving
    ctx = await create_context(None, "127.0.0.1", 0)
    try:
        req = Message(code=POST, uri=plain_uri(server))
        req.opt.uri_path = ("bs",)
        assert str((await response_within(ctx.request(req), 10)).code).startswith("4.00")
    finally:
        await ctx.shutdown()


async def test_refusals(server: LwM2MServer) -> None:
    await server.credentials.import_csv(f"f-1,factory-f-1,{FACTORY_KEY.hex()}\nf-2,factory-f-2,{FACTORY_KEY.hex()}\n",
                                        bootstrap=True)
    for ep in ("f-1", "f-2", "open-psk"):
        await server.bootstrap_configs.put({"endpoint": ep, "server_uri": coaps_uri(server)})
    # an endpoint with a factory bootstrap PSK may not bootstrap over plain CoAP
    with pytest.raises(BootstrapFailed, match=r"4\.03"):
        await bootstrap("f-1", plain_uri(server), timeout=10)
    # f-2's bootstrap identity cannot bootstrap f-1
    with pytest.raises(BootstrapFailed, match=r"4\.03"):
        await bootstrap("f-1", coaps_uri(server), identity="factory-f-2", key=FACTORY_KEY, timeout=10)
    # a psk config (it hands out a key) is never provisioned over plain CoAP
    with pytest.raises(BootstrapFailed, match=r"4\.03"):
        await bootstrap("open-psk", plain_uri(server), timeout=10)
    assert server.credentials.endpoint_for("factory-f-1") is None and not server.credentials.is_secured("open-psk")
    reasons = [e["detail"]["reason"] for e in await server.audit.entries(action_prefix="bootstrap.refused")]
    assert len(reasons) == 3
    # a factory bootstrap identity opens a DTLS session, but never registers
    dev = psk_device("f-1", "factory-f-1", FACTORY_KEY)
    try:
        with pytest.raises(RegistrationFailed, match=r"4\.03"):
            await dev.register_once(coaps_uri(server))
    finally:
        await dev.stop(deregister=False)
    assert server.registry.get("f-1") is None


async def test_wrong_factory_key_fails_handshake(server: LwM2MServer) -> None:
    await server.credentials.import_csv(f"k-1,factory-k-1,{FACTORY_KEY.hex()}\n", bootstrap=True)
    await server.bootstrap_configs.put({"endpoint": "k-1", "server_uri": coaps_uri(server)})
    with pytest.raises((TimeoutError, aiocoap.error.Error)):  # the DTLS handshake fails: no response at all
        await bootstrap("k-1", coaps_uri(server), identity="factory-k-1", key=b"\x00" * 16, timeout=5)
    assert not server.credentials.is_secured("k-1")
    assert not await server.audit.entries(action_prefix="bootstrap.start")


async def test_device_refusing_a_step_ends_the_sequence_audited(server: LwM2MServer) -> None:
    """A client that answers 4.04 to everything (no objects): the sequence stops at the first Delete, and
    ``bootstrap.finished`` records the failure; the server keeps serving."""
    await server.bootstrap_configs.put({"endpoint": "mute-1", "server_uri": plain_uri(server),
                                        "security_mode": "nosec"})
    ctx = await create_context(None, "127.0.0.1", 0)
    try:
        req = Message(code=POST, uri=plain_uri(server))
        req.opt.uri_path, req.opt.uri_query = ("bs",), ("ep=mute-1",)
        assert str((await response_within(ctx.request(req), 10)).code) == "2.04 Changed"
        await asyncio.sleep(0.05)
        await asyncio.wait_for(server.bootstrap.drain(), 10)
    finally:
        await ctx.shutdown()
    finished = await server.audit.entries(action_prefix="bootstrap.finished")
    assert finished[0]["detail"] == {"ok": False, "error": "DELETE /0 answered 4.04"}
    await test_nosec_bootstrap_over_plain_coap(server)  # the next device is served as usual
