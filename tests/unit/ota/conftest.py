"""Fixtures for the OTA unit tests: a bare aiocoap server on an ephemeral loopback port, a fresh SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap
import pytest
from aiocoap.resource import Site

from lwm2m_server.store.sqlite import SqliteStore


def bound_port(ctx: aiocoap.Context) -> int:
    """The UDP port an aiocoap server context bound to (port 0 -> ephemeral)."""
    for ri in ctx.request_interfaces:
        mi = getattr(getattr(ri, "token_interface", None), "message_interface", None)
        transport = getattr(mi, "transport", None)
        sock = getattr(transport, "_RecvmsgSelectorDatagramTransport__sock", None)
        if sock is not None:
            return int(sock.getsockname()[1])
    raise RuntimeError("no UDP transport")


@pytest.fixture
async def coap_client() -> AsyncIterator[aiocoap.Context]:
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    yield ctx
    await ctx.shutdown()


async def start_site(site: Site) -> tuple[aiocoap.Context, int]:
    ctx = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", 0), transports=["udp6"])
    return ctx, bound_port(ctx)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "db.sqlite3")
    await s.open()
    yield s
    await s.close()
