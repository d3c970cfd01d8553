"""Observations started through the REST API, kept until cancelled or the device's registration ends.

The DeviceClient itself publishes every notification on the event bus (``notification`` events with
``path`` and ``values``), so SSE clients and the MQTT bridge see them; here we only keep the handles,
so that ``DELETE .../observe`` cancels the API's own observation and not, say, the inventory's.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from lwm2m_server.api.errors import not_found
from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath

Key = tuple[str, LwM2MPath]


def _table(app: FastAPI) -> dict[Key, Any]:
    table: dict[Key, Any] = app.state.observations
    for key in [k for k, obs in table.items() if obs.cancelled]:
        del table[key]  # ended by a re-registration, de-registration or the device (RST)
    return table


async def start_observation(app: FastAPI, server: Any, endpoint: str, path: LwM2MPath, *,
                            content_format: int | None = None, timeout: float | None = None) -> Content:
    """Observe ``path`` (replacing an earlier API observation of it) and return the current value."""
    table = _table(app)
    obs = await server.client.observe(endpoint, path, content_format=content_format, timeout=timeout)
    if obs.cancelled:  # the device answered without an Observe option: not observable
        error = obs.error if isinstance(obs.error, DeviceError) else DeviceError("not_observable", str(path))
        raise error
    old = table.pop((endpoint, path), None)
    if old is not None:
        old.cancel()
    table[(endpoint, path)] = obs
    value: Content = dict(obs.value)
    return value


async def stop_observation(app: FastAPI, server: Any, endpoint: str, path: LwM2MPath) -> None:
    """Cancel the API's observation of ``path`` (or, if it has none, any observation of it); 404 if none."""
    obs = _table(app).pop((endpoint, path), None)
    if obs is not None:
        obs.cancel()
        return
    if await server.client.cancel_observe(endpoint, path) == 0:
        raise not_found(f"no observation of {path} on {endpoint!r}")


async def cancel_all(app: FastAPI) -> None:
    table: dict[Key, Any] = app.state.observations
    for obs in list(table.values()):
        obs.cancel()
    table.clear()
