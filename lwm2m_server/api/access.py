"""The API's only window onto the server facade: registrations, sleep state, profiles, counters.

Routers call these helpers instead of reaching into ``LwM2MServer`` internals, so a change in the
facade is absorbed here, in one place.
"""

from __future__ import annotations

import time
from typing import Any

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
    probe = getattr(server, "is_sleeping", None)
    if callable(probe):
        return bool(probe(reg.endpoint))
    window = float(server.settings.server.queue_mode_window_s)
    return time.time() - reg.last_seen > window


async def profile(server: Any, endpoint: str) -> Any | None:
    """The device's inventory profile (``DeviceProfile``) or None before inventory finished."""
    return await server.profile(endpoint)


def coap_request_counts(server: Any) -> dict[tuple[str, str], int] | None:
    """CoAP request counts keyed by (direction, code), if the server keeps them."""
    stats = getattr(server, "coap_stats", None)
    if stats is None:
        return None
    counts = stats() if callable(stats) else stats
    return {(str(d), str(c)): int(n) for (d, c), n in dict(counts).items()}
