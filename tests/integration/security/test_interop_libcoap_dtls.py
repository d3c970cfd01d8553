"""Interop with a third-party DTLS client: libcoap's ``coap-client-openssl`` (OpenSSL's DTLS 1.2, PSK) registers
over coaps with ``-u IDENTITY -k KEY`` and gets the right codes; a wrong key never completes the handshake."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.server import LwM2MServer
from tests.integration.security.conftest import secure_settings

CLIENT = shutil.which("coap-client-openssl")
pytestmark = pytest.mark.skipif(CLIENT is None, reason="libcoap3-bin (coap-client-openssl) is not installed")
KEY = "secretPSK1234567"  # libcoap's -k takes the key as text
CODE = re.compile(r"t:(?:ACK|CON|NON) c:(\d\.\d\d)")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(secure_settings(tmp_path), inventory=False)  # coap-client serves no objects
    await srv.start()
    await srv.credentials.add("lc-1", "id-lc-1", KEY.encode())
    await srv.credentials.add("lc-2", "id-lc-2", KEY.encode())
    try:
        yield srv
    finally:
        await srv.stop()


async def coaps(server: LwM2MServer, identity: str, key: str, method: str, path: str, *extra: str) -> list[str]:
    """The CoAP codes of the responses coap-client printed (empty: no response, e.g. a failed handshake)."""
    assert CLIENT is not None
    proc = await asyncio.create_subprocess_exec(
        CLIENT, "-v", "6", "-B", "4", "-m", method, "-u", identity, "-k", key, *extra,
        f"coaps://127.0.0.1:{server.coaps_port}{path}", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return [c for c in CODE.findall(out.decode(errors="replace")) if c != "0.00"]  # our request shows c:POST


async def test_register_and_deregister_over_coaps(server: LwM2MServer) -> None:
    codes = await coaps(server, "id-lc-1", KEY, "post", "/rd?ep=lc-1&lt=60", "-t", "40", "-e", "</1/0>,</3/0>")
    assert codes == ["2.01"]
    reg = server.registry.get("lc-1")
    assert reg is not None and reg.security == "psk"
    assert await coaps(server, "id-lc-1", KEY, "delete", f"/rd/{reg.reg_id}") == ["2.02"]
    assert server.registry.get("lc-1") is None
    assert server.dtls_stats.snapshot()["handshake_ok"] == 2


async def test_other_endpoints_name_is_403(server: LwM2MServer) -> None:
    codes = await coaps(server, "id-lc-1", KEY, "post", "/rd?ep=lc-2&lt=60", "-t", "40", "-e", "</3/0>")
    assert codes == ["4.03"]
    assert server.registry.get("lc-2") is None


async def test_wrong_key_fails_the_handshake(server: LwM2MServer) -> None:
    assert await coaps(server, "id-lc-1", "wrongwrongwrong!", "post", "/rd?ep=lc-1", "-e", "</3/0>") == []
    assert server.registry.get("lc-1") is None
    assert server.dtls_stats.snapshot().get("handshake_ok", 0) == 0
    assert await coaps(server, "id-lc-2", KEY, "post", "/rd?ep=lc-2", "-e", "</3/0>") == ["2.01"]  # still serving
