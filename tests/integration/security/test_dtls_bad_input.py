"""Hostile datagrams at the coaps listener: garbage and truncated handshakes, a ClientHello flood from many
(spoofed-looking) ports. State stays bounded (cap + age-out), failures are counted in /metrics, and devices with
an established session, and new ones after the flood, keep being served."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.api.metrics import _DeviceCollector
from lwm2m_server.coap.dtls import is_client_hello
from lwm2m_server.server import LwM2MServer
from tests.integration.security.conftest import coaps_uri, psk_device, secure_settings
from tests.integration.server.conftest import until

KEY = bytes(range(16))
CAP = 16


def client_hello(seq: int = 0, *, truncate: int | None = None) -> bytes:
    """A DTLS 1.2 ClientHello record without cookie (what a spoofing flooder sends)."""
    body = b"\xfe\xfd" + os.urandom(32) + b"\x00" + b"\x00" + b"\x00\x02\xc0\xa8" + b"\x01\x00"
    hs = b"\x01" + len(body).to_bytes(3, "big") + struct.pack("!H", 0) + b"\x00\x00\x00" + len(body).to_bytes(3, "big")
    record = b"\x16\xfe\xfd" + b"\x00\x00" + seq.to_bytes(6, "big") + struct.pack("!H", len(hs + body)) + hs + body
    return record[:truncate] if truncate else record


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(secure_settings(tmp_path, max_handshakes=CAP, handshake_timeout_s=1.0))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def metrics(server: LwM2MServer) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in _DeviceCollector(server).collect():
        for sample in family.samples:
            if sample.name.startswith("tinymlaas_dtls"):
                out[sample.name + "".join(f"/{v}" for v in sample.labels.values())] = sample.value
    return out


async def test_flood_and_garbage_keep_state_bounded(server: LwM2MServer) -> None:
    await server.credentials.add("steady", "id-steady", KEY)
    steady = psk_device("steady", "id-steady", KEY)
    await steady.start(coaps_uri(server))
    target = ("127.0.0.1", server.coaps_port)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(120)]
    try:
        assert is_client_hello(client_hello())
        garbage = [b"", b"\x16", os.urandom(40), b"\x17\xfe\xfd" + os.urandom(30), client_hello()[:20]]
        for data in garbage:
            socks[0].sendto(data, target)
        socks[1].sendto(client_hello(truncate=30), target)  # a ClientHello cut short: tinydtls refuses it
        for s in socks[2:]:
            s.sendto(client_hello(), target)
        await until(lambda: server.dtls_stats.snapshot().get("handshake_dropped", 0) >= 118 - CAP, timeout=5)
        stats = server.dtls_stats.snapshot()
        assert stats["refused_datagram"] >= len(garbage)
        assert server.dtls_stats.pending <= CAP
        assert await server.client.read("steady", "/3/0/0")  # the established session is unaffected
        m = metrics(server)
        assert m["tinymlaas_dtls_events_total/handshake_dropped"] >= 118 - CAP
        assert m["tinymlaas_dtls_handshakes_pending"] <= CAP and m["tinymlaas_dtls_sessions"] == 1

        await asyncio.sleep(1.2)  # the flood's half-open handshakes age out; a new device gets through
        await server.credentials.add("late", "id-late", KEY)
        late = psk_device("late", "id-late", KEY)
        await asyncio.wait_for(late.start(coaps_uri(server)), 15)
        assert server.registry.get("late") is not None
        assert server.dtls_stats.snapshot().get("handshake_expired", 0) >= 1
        assert server.dtls_stats.pending <= CAP and len(server.sessions) == 2
        await late.stop()
    finally:
        for s in socks:
            s.close()
        await steady.stop()
