"""A real LwM2MServer + HTTP API on ephemeral loopback ports (SQLite in tmp_path) for third-party clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio

from lwm2m_server.api import ApiRunner, create_app
from lwm2m_server.config import load_settings
from lwm2m_server.events import Subscription
from lwm2m_server.server import LwM2MServer
from tests.support.auth import authorized


@dataclass
class Stack:
    server: LwM2MServer
    http: httpx.AsyncClient
    events: Subscription

    @property
    def coap_port(self) -> int:
        return self.server.coap_port


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    settings = load_settings(
        None,
        environ={},
        overrides={
            "server": {"coap_host": "127.0.0.1", "coap_port": 0, "http_port": 0, "data_dir": str(tmp_path / "data"),
                       "registration_grace_s": 0.0, "request_timeout_s": 5.0},
            "store": {"batch_window_ms": 2.0},
        },
    )  # fmt: skip
    server = LwM2MServer(settings)
    await server.start()
    events = server.events.subscribe()
    async with authorized(server.store) as auth:
        runner = ApiRunner(create_app(server, tokens=auth.tokens), "127.0.0.1", 0)
        await runner.start()
        http = httpx.AsyncClient(base_url=runner.url, timeout=15.0, headers=auth.headers)
        try:
            yield Stack(server, http, events)
        finally:
            await http.aclose()
            await runner.stop()
            await server.stop()
