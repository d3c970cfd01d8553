"""The API's only window onto the server facade: registrations, sleep state, profiles, counters.

Routers call these helpers instead of reaching into ``LwM2MServer`` internals, so a change in the
facade is absorbed here, in one place.
"""

from __future__ import annotations

from typing import Any

from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.registration import Registration


def registrations(server: Any) -> list[Registration]:
    """Every live registration, sorted by endpoint."""
    registry = server.registry
    regs = list(registry.all()) if hasattr(registry, "all") else list(registry)
    return sorted(regs, key=lambda r: r.endpoint)


def registered_count(server: Any) -> int:
    registry = server.registry
    return len(registry)


def registration(server: Any, endpoint: str) -> Registration | None:
    reg: Registration | None = server.registry.get(endpoint)
    return reg


def is_sleeping(server: Any, reg: Registration) -> bool:
    """A queue-mode device is asleep once its listening window after the last uplink has passed."""
    if not reg.queue_mode:
        return False
    return server.is_awake(reg.endpoint) is False


async def profile(server: Any, endpoint: str) -> Any | None:
    """The device's inventory profile (``DeviceProfile``) or None before inventory finished."""
    return await server.profile(endpoint)


async def profiles(server: Any, endpoints: list[str]) -> dict[str, Any]:
    """Profiles for many devices: from the inventory's in-memory cache (loaded from the store at start-up),
    falling back to the store only for devices not in it, so listing 10k devices is not 10k queries."""
    inventory = server.inventory
    out: dict[str, Any] = {}
    for endpoint in endpoints:
        cached = inventory.get(endpoint) if inventory is not None else None
        out[endpoint] = cached if cached is not None else await server.profile(endpoint)
    return out


def rd_request_counts(server: Any) -> dict[str, int]:
    """Registration-interface requests by outcome (registered, updated, deregistered, rejected, unknown)."""
    return {str(k): int(v) for k, v in server.counters.items()}


def dtls_stats(server: Any) -> tuple[dict[str, int], int, int]:
    """The coaps listener's (handshake outcome counts, handshakes in progress, established sessions)."""
    stats = getattr(server, "dtls_stats", None)
    if stats is None:
        return {}, 0, 0
    return stats.snapshot(), int(stats.pending), int(stats.sessions)


def coap_request_counts(server: Any) -> dict[tuple[str, str, str], int]:
    """CoAP requests by (direction, method, code): ``out`` = server→device, ``in`` = handled by ``/rd``."""
    return server.client.stats.snapshot()  # type: ignore[no-any-return]


def object_model(server: Any) -> ObjectRegistry:
    """The object model the server's codecs use (to type JSON write bodies the same way)."""
    return server.client.model  # type: ignore[no-any-return]


def observed_values(server: Any, endpoint: str) -> dict[str, Any]:
    """The latest value of every path observed on the device (the inventory's /5/0/3, /5/0/5, /32002/0 and
    any operator observation), keyed by path text: what the fleet view shows without a device round trip."""
    values: dict[str, Any] = {}
    for obs in server.client.observations(endpoint):
        for path, value in dict(obs.value).items():
            values[str(path)] = value
    return values
