"""Fixtures: a real LwM2MServer on 127.0.0.1 (ephemeral UDP port, SQLite file in tmp_path) and a CoAP client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiocoap
import pytest

from lwm2m_server.config import Settings, load_settings
from lwm2m_server.events import Event, Subscription
from lwm2m_server.server import LwM2MServer


def make_settings(data_dir: Path, **server: Any) -> Settings:
    values: dict[str, Any] = {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": data_dir,
                              "registration_grace_s": 0.0, "request_timeout_s": 5.0}  # fmt: skip
    values.update(server)
    return load_settings(None, environ={}, overrides={"server": values, "store": {"batch_window_ms": 2.0}})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(settings)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def coap_client() -> AsyncIterator[aiocoap.Context]:
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        yield ctx
    finally:
        await ctx.shutdown()


async def wait_event(sub: Subscription, predicate: Callable[[Event], bool], timeout: float = 5.0) -> Event:
    """The first event matching ``predicate`` within ``timeout`` s (others are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        ev = await sub.get(max(0.01, deadline - loop.time()))
        if predicate(ev):
            return ev


async def until(cond: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)
