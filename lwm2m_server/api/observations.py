"""Observations started through the REST API, kept until cancelled or the device goes away.

The DeviceClient delivers notifications; we forward each one to the event bus as a ``notification``
event (unless the server already publishes them itself), so SSE clients and the MQTT bridge see them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import FastAPI

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath

log = get_logger(__name__)

Key = tuple[str, LwM2MPath]


def _table(app: FastAPI) -> dict[Key, Any]:
    table: dict[Key, Any] = app.state.observations
    return table


async def start_observation(app: FastAPI, server: Any, endpoint: str, path: LwM2MPath, *,
                            timeout: float | None = None) -> Content:
    """Observe ``path`` (replacing an earlier API observation of it) and return the current value."""
    table = _table(app)
    old = table.pop((endpoint, path), None)
    if old is not None:
        with contextlib.suppress(Exception):
            old.cancel()
    obs = await server.client.observe(endpoint, path)
    table[(endpoint, path)] = obs
    initial: Content = dict(getattr(obs, "initial", None) or {})
    return initial


async def stop_observation(app: FastAPI, server: Any, endpoint: str, path: LwM2MPath) -> None:
    """Cancel the observation of ``path`` on the device (a no-op if there is none)."""
    obs = _table(app).pop((endpoint, path), None)
    if obs is not None:
        with contextlib.suppress(Exception):
            obs.cancel()
    await server.client.cancel_observe(endpoint, path)


async def cancel_all(app: FastAPI) -> None:
    table = _table(app)
    for obs in list(table.values()):
        with contextlib.suppress(Exception):
            result = obs.cancel()
            if asyncio.iscoroutine(result):
                await result
    table.clear()
