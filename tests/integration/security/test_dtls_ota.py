"""A signed model installed over DTLS: push (Block1 on the device's session) and pull (Package URI is coaps://,
fetched over the same session from /fw on the secure listener), confirmed through /32002/0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.ota.service import OtaService
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from tests.integration.ota.models import KWS, signed_kws_package
from tests.integration.security.conftest import coaps_uri, psk_device, secure_settings

pytestmark = pytest.mark.skipif(not KWS.exists(), reason="MLPerf Tiny models not available")
KEY = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[LwM2MServer, OtaService]]:
    settings = secure_settings(tmp_path, plain=False)  # DTLS only: nothing may fall back to plain CoAP
    settings = settings.model_copy(update={"ota": settings.ota.model_copy(update={"poll_interval_s": 1.0})})
    server = LwM2MServer(settings)
    ota = OtaService(server)
    await server.start()
    await ota.start()
    try:
        yield server, ota
    finally:
        await ota.stop()
        await server.stop()


@pytest.mark.parametrize("method", ["push", "pull"])
async def test_model_over_dtls(stack: tuple[LwM2MServer, OtaService], method: str) -> None:
    server, ota = stack
    assert server.coap_port == 0 and server.coaps_port > 0
    ep = f"secure-{method}"
    await server.credentials.add(ep, f"id-{ep}", KEY)
    blob, public_key = signed_kws_package(server.settings.server.data_dir)
    dev = psk_device(ep, f"id-{ep}", KEY, server_public_key=public_key)
    await dev.start(coaps_uri(server))
    assert dev.objects is not None
    written: list[object] = []
    dev.objects.on_write(5, 1, lambda path, value: (written.append(value), dev.firmware._on_uri_write(path, value)))
    try:
        info = await ota.add_package(blob, "model")
        job_id = await ota.start_update(ep, info.sha256, method=method)
        record = await asyncio.wait_for(ota.wait(job_id), 40)
        assert record.phase == "succeeded", record.to_json()
        assert record.method == method
        assert dev.objects is not None
        assert dev.objects.get(LwM2MPath(32002, 0, 2)) == record.progress["model_sha256"]
        if method == "pull":
            assert written[0] == f"coaps://127.0.0.1:{server.coaps_port}/fw/{info.sha256}"
            served = ota.fw_resource.stats.get(info.sha256)
            assert served is not None and served.bytes >= len(blob)
        assert server.dtls_stats.snapshot() == {"handshake_ok": 1}  # one session for everything
    finally:
        await dev.stop()
