"""Registration interface over real UDP: Register/Update/De-register, errors, re-registration, address change,
expiry and restart recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiocoap
from aiocoap.numbers.codes import Code

from lwm2m_server.config import Settings
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from tests.integration.server.conftest import make_settings, until, wait_event

LINKS = b'</>;rt="oma.lwm2m";ct=112,</1/0>,</3/0>,</5/0>'


def _req(server: LwM2MServer, code: Code, path: str, payload: bytes = b"", **kw: object) -> aiocoap.Message:
    return aiocoap.Message(code=code, uri=f"coap://127.0.0.1:{server.coap_port}{path}", payload=payload, **kw)


async def _register(ctx: aiocoap.Context, server: LwM2MServer, query: str, payload: bytes = LINKS) -> aiocoap.Message:
    return await ctx.request(_req(server, Code.POST, f"/rd?{query}", payload)).response


async def test_register_update_deregister(server: LwM2MServer, coap_client: aiocoap.Context) -> None:
    sub = server.events.subscribe()
    resp = await _register(coap_client, server, "ep=dev1&lt=60&lwm2m=1.1&b=U")
    assert resp.code == Code.CREATED
    assert resp.opt.location_path[0] == "rd" and len(resp.opt.location_path) == 2
    reg = server.registry.get("dev1")
    assert reg is not None and reg.reg_id == resp.opt.location_path[1]
    assert (reg.lifetime, reg.lwm2m_version, reg.binding, reg.queue_mode) == (60, "1.1", "U", False)
    assert reg.content_formats == frozenset({112}) and LwM2MPath(5, 0) in reg.instances
    ev = await wait_event(sub, lambda e: e.type == "registered")
    assert ev.endpoint == "dev1" and ev.data["reg_id"] == reg.reg_id

    loc = "/" + "/".join(resp.opt.location_path)
    upd = await coap_client.request(_req(server, Code.POST, f"{loc}?lt=120")).response
    assert upd.code == Code.CHANGED
    assert server.registry.get("dev1").lifetime == 120  # type: ignore[union-attr]
    await wait_event(sub, lambda e: e.type == "updated")

    dereg = await coap_client.request(_req(server, Code.DELETE, loc)).response
    assert dereg.code == Code.DELETED
    assert server.registry.get("dev1") is None
    await wait_event(sub, lambda e: e.type == "deregistered" and e.endpoint == "dev1")
    again = await coap_client.request(_req(server, Code.DELETE, loc)).response
    assert again.code == Code.NOT_FOUND
    await server.store.flush()
    assert await server.store.load_registrations() == []
    logged = [e["type"] for e in await server.store.events(endpoint="dev1") if e["type"] != "inventory"]
    assert logged == ["registered", "updated", "deregistered"]


async def test_registration_errors(server: LwM2MServer, coap_client: aiocoap.Context) -> None:
    assert (await _register(coap_client, server, "lt=60")).code == Code.BAD_REQUEST  # no ep
    assert (await _register(coap_client, server, "ep=x&lwm2m=9.9")).code == Code.PRECONDITION_FAILED
    assert (await _register(coap_client, server, "ep=x&lt=abc")).code == Code.BAD_REQUEST
    assert (await _register(coap_client, server, "ep=x&ep=y")).code == Code.BAD_REQUEST
    assert (await _register(coap_client, server, "ep=x", b"<<<garbage")).code == Code.BAD_REQUEST
    non = _req(server, Code.POST, "/rd?ep=x", LINKS, transport_tuning=aiocoap.Unreliable)
    assert (await coap_client.request(non).response).code == Code.BAD_REQUEST
    for method in (Code.POST, Code.DELETE):
        assert (await coap_client.request(_req(server, method, "/rd/nope")).response).code == Code.NOT_FOUND
    assert (await coap_client.request(_req(server, Code.GET, "/rd")).response).code == Code.METHOD_NOT_ALLOWED
    assert len(server.registry) == 0
    ok = await _register(coap_client, server, "ep=good")
    assert ok.code == Code.CREATED and "good" in server.registry


async def test_defaults_and_queue_flags(server: LwM2MServer, coap_client: aiocoap.Context) -> None:
    assert (await _register(coap_client, server, "ep=d10", b"</3/0>")).code == Code.CREATED
    reg = server.registry.get("d10")
    assert reg is not None and (reg.lifetime, reg.binding, reg.lwm2m_version) == (86400, "U", "1.0")
    assert (await _register(coap_client, server, "ep=q10&b=UQ")).code == Code.CREATED
    assert server.registry.get("q10").queue_mode  # type: ignore[union-attr]
    assert (await _register(coap_client, server, "ep=q11&lwm2m=1.1&Q")).code == Code.CREATED
    assert server.registry.get("q11").queue_mode  # type: ignore[union-attr]


async def test_reregistration_replaces(server: LwM2MServer, coap_client: aiocoap.Context) -> None:
    first = await _register(coap_client, server, "ep=dup&lt=60")
    second = await _register(coap_client, server, "ep=dup&lt=70")
    assert first.opt.location_path != second.opt.location_path
    assert len(server.registry) == 1 and server.registry.get("dup").lifetime == 70  # type: ignore[union-attr]
    old = "/" + "/".join(first.opt.location_path)
    assert (await coap_client.request(_req(server, Code.POST, old)).response).code == Code.NOT_FOUND
    await server.store.flush()
    assert [r.endpoint for r in await server.store.load_registrations()] == ["dup"]


async def test_update_from_new_address_is_adopted(server: LwM2MServer, coap_client: aiocoap.Context) -> None:
    resp = await _register(coap_client, server, "ep=mover&lt=60")
    before = server.registry.get("mover").port  # type: ignore[union-attr]
    other = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        loc = "/" + "/".join(resp.opt.location_path)
        assert (await other.request(_req(server, Code.POST, loc)).response).code == Code.CHANGED
    finally:
        await other.shutdown()
    after = server.registry.get("mover")
    assert after is not None and after.port != before


async def test_expiry(tmp_path: Path, coap_client: aiocoap.Context) -> None:
    async with LwM2MServer(make_settings(tmp_path, registration_grace_s=0.2)) as server:
        sub = server.events.subscribe()
        resp = await _register(coap_client, server, "ep=short&lt=1")
        assert resp.code == Code.CREATED
        ev = await wait_event(sub, lambda e: e.type == "expired", timeout=4.0)
        assert ev.endpoint == "short" and "short" not in server.registry
        loc = "/" + "/".join(resp.opt.location_path)
        assert (await coap_client.request(_req(server, Code.POST, loc)).response).code == Code.NOT_FOUND


async def test_restart_recovery(tmp_path: Path, coap_client: aiocoap.Context) -> None:
    settings: Settings = make_settings(tmp_path)
    async with LwM2MServer(settings, inventory=False) as server:
        keep = await _register(coap_client, server, "ep=keep&lt=600")
        await _register(coap_client, server, "ep=gone&lt=1")
        port = server.coap_port
    await asyncio.sleep(1.1)
    async with LwM2MServer(make_settings(tmp_path, coap_port=port), inventory=False) as server:
        assert [r.endpoint for r in server.registry] == ["keep"]
        assert server.registry.get("keep").reg_id == keep.opt.location_path[1]  # type: ignore[union-attr]
        loc = "/" + "/".join(keep.opt.location_path)
        assert (await coap_client.request(_req(server, Code.POST, loc)).response).code == Code.CHANGED
        expired = await server.store.events(type="expired")
        assert [e["endpoint"] for e in expired] == ["gone"]
        await until(lambda: True)
