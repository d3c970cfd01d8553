"""Observations started through the REST API, kept until cancelled or the device de-registers.

The DeviceClient itself publishes every notification on the event bus (``notification`` events with
``path`` and ``values``), so SSE clients and the MQTT bridge see them; here we keep the handles, so that
``DELETE .../observe`` cancels the API's own handle and not, say, the inventory's (owners of one path share a
CoAP observation, cancelled only with its last handle: see :mod:`lwm2m_server.coap.observation`), and so that
observations dropped by a new Register (reboot) or an address change are re-established, as LwM2M
servers do: a device's observations do not survive its re-registration.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from lwm2m_server.api.errors import not_found
from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath

log = get_logger(__name__)

Key = tuple[str, LwM2MPath]
OWNER = "api"


def _table(app: FastAPI) -> dict[Key, Any]:
    table: dict[Key, Any] = app.state.observations
    return table


def setup_reobserve(app: FastAPI, server: Any) -> None:
    """Re-observe the API's observations of a device after it registers again or moves."""

    async def on_registration(reg: Any, kind: str) -> None:
        table = _table(app)
        if kind in ("deregistered", "expired"):
            for key in [k for k in table if k[0] == reg.endpoint]:
                del table[key]
            return
        for (endpoint, path), obs in list(table.items()):
            if endpoint != reg.endpoint or not obs.cancelled:
                continue
            try:
                fresh = await server.client.observe(endpoint, path, owner=OWNER)
            except DeviceError as exc:
                log.warning("api.reobserve_failed", endpoint=endpoint, path=str(path), error=str(exc))
                continue
            if table.get((endpoint, path)) is obs:
                table[(endpoint, path)] = fresh
            else:  # cancelled or replaced through the API meanwhile
                fresh.cancel()

    server.add_registration_listener(on_registration)


async def start_observation(app: FastAPI, server: Any, endpoint: str, path: LwM2MPath, *,
                            content_format: int | None = None, timeout: float | None = None) -> Content:
    """Observe ``path`` (replacing an earlier API observation of it) and return the current value."""
    table = _table(app)
    obs = await server.client.observe(endpoint, path, content_format=content_format, timeout=timeout,
                                      owner=OWNER)
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
    """Cancel the API's own observation of ``path``; 404 if the API has none. Only API-owned handles are
    touched: the server's own observations of the path (inventory/OTA) share the CoAP observation and live on."""
    obs = _table(app).pop((endpoint, path), None)
    if obs is not None:
        obs.cancel()
        return
    if await server.client.cancel_observe(endpoint, path, owner=OWNER) == 0:
        raise not_found(f"no observation of {path} on {endpoint!r}")


async def cancel_all(app: FastAPI) -> None:
    table: dict[Key, Any] = app.state.observations
    for obs in list(table.values()):
        obs.cancel()
    table.clear()
