"""Interop with an independent CoAP implementation: libcoap's ``coap-client-notls`` registers, updates and
de-registers by hand-written requests; every response code, type, message id, token and option is checked."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass

import pytest

from lwm2m_server.server import LwM2MServer

CLIENT = shutil.which("coap-client-notls") or shutil.which("coap-client")
pytestmark = pytest.mark.skipif(CLIENT is None, reason="libcoap3-bin (coap-client-notls) is not installed")

LINE = re.compile(
    r"v:1 t:(?P<type>\w+) c:(?P<code>[\w.]+) i:(?P<mid>[0-9a-f]+) \{(?P<token>[0-9a-f]*)\} \[(?P<opts>.*)\]"
)


@dataclass
class Exchange:
    request: dict[str, str]
    response: dict[str, str]

    def options(self, name: str) -> list[str]:
        return [v.strip() for k, v in (o.split(":", 1) for o in self.response["opts"].split(",") if ":" in o)
                if k.strip() == name]  # fmt: skip


async def coap(*args: str) -> Exchange:
    assert CLIENT is not None
    proc = await asyncio.create_subprocess_exec(CLIENT, "-v", "6", "-B", "5", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 15)
    lines = [m.groupdict() for m in map(LINE.search, out.decode(errors="replace").splitlines()) if m]
    assert len(lines) >= 2, out.decode(errors="replace")
    return Exchange(lines[0], lines[-1])


async def test_register_update_deregister_with_libcoap(server: LwM2MServer) -> None:
    base = f"coap://127.0.0.1:{server.coap_port}"
    reg = await coap("-m", "post", "-t", "40", "-e", '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>',
                     f"{base}/rd?ep=libcoap-1&lt=60&lwm2m=1.1&b=U")  # fmt: skip
    assert reg.request["type"] == "CON" and reg.response["type"] == "ACK"
    assert reg.response["code"] == "2.01"
    assert reg.response["mid"] == reg.request["mid"] and reg.response["token"] == reg.request["token"]
    loc = reg.options("Location-Path")
    assert loc[0] == "rd" and len(loc) == 2
    r = server.registry.get("libcoap-1")
    assert r is not None and r.reg_id == loc[1] and r.lifetime == 60 and r.content_formats == frozenset({110})

    upd = await coap("-m", "post", f"{base}/rd/{loc[1]}?lt=90")
    assert (upd.response["type"], upd.response["code"]) == ("ACK", "2.04")
    assert upd.options("Location-Path") == []
    assert server.registry.get("libcoap-1").lifetime == 90  # type: ignore[union-attr]

    upd_links = await coap("-m", "post", "-t", "40", "-e", "</1/0>,</3/0>,</5/0>", f"{base}/rd/{loc[1]}")
    assert upd_links.response["code"] == "2.04"
    assert server.registry.get("libcoap-1").has_object(5)  # type: ignore[union-attr]

    bye = await coap("-m", "delete", f"{base}/rd/{loc[1]}")
    assert (bye.response["type"], bye.response["code"]) == ("ACK", "2.02")
    assert "libcoap-1" not in server.registry
    again = await coap("-m", "delete", f"{base}/rd/{loc[1]}")
    assert again.response["code"] == "4.04"
    stale = await coap("-m", "post", f"{base}/rd/{loc[1]}?lt=30")
    assert stale.response["code"] == "4.04"


async def test_error_codes_with_libcoap(server: LwM2MServer) -> None:
    base = f"coap://127.0.0.1:{server.coap_port}"
    assert (await coap("-m", "post", "-e", "</3/0>", f"{base}/rd?lt=60")).response["code"] == "4.00"
    assert (await coap("-m", "post", "-e", "</3/0>", f"{base}/rd?ep=v&lwm2m=2.5")).response["code"] == "4.12"
    assert (await coap("-m", "post", "-e", "<bad", f"{base}/rd?ep=v")).response["code"] == "4.00"
    non = await coap("-N", "-m", "post", "-e", "</3/0>", f"{base}/rd?ep=v")
    assert (non.request["type"], non.response["type"], non.response["code"]) == ("NON", "NON", "4.00")
    assert (await coap("-m", "get", f"{base}/rd")).response["code"] == "4.05"
    assert len(server.registry) == 0
    ok = await coap("-m", "post", "-e", "</3/0>", f"{base}/rd?ep=v")
    assert ok.response["code"] == "2.01" and "v" in server.registry
