"""Refused requests (401/403) into the audit log, aggregated so that a flood cannot fill the disk.

Within one window (default 60 s) the first refusal per ``(status, reason, client)`` is written at once
with its method and path; repeats are only counted, and when the window has passed one
``auth.refused.repeated`` entry per key carries the count. At most ``max_keys`` distinct keys are tracked
per window; refusals beyond that share one overflow key. So a window writes at most ``2 * (max_keys + 1)``
rows whatever the request rate or the number of clients.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from lwm2m_server.logging import get_logger
from lwm2m_server.store.audit import AuditLog

log = get_logger(__name__)

Key = tuple[int, str, str]
OVERFLOW_CLIENT = "*"


@dataclass
class _Count:
    repeats: int = 0


class RefusalAudit:
    def __init__(self, audit: AuditLog, *, window_s: float = 60.0, max_keys: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._audit = audit
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._window_start = clock()
        self._counts: dict[Key, _Count] = {}
        self._lock = asyncio.Lock()
        self.total = 0  # every refusal since start (for tests and metrics)

    async def refused(self, status: int, reason: str, client: str, method: str, path: str) -> None:
        self.total += 1
        async with self._lock:
            if self._clock() - self._window_start >= self._window_s:
                await self._flush_locked()
            key: Key = (status, reason, client)
            if key not in self._counts and len(self._counts) >= self._max_keys:
                key = (status, reason, OVERFLOW_CLIENT)
            count = self._counts.get(key)
            if count is not None:
                count.repeats += 1
                return
            self._counts[key] = _Count()
            log.warning("api.refused", status=status, reason=reason, client=client, method=method, path=path)
            await self._audit.record("auth.refused", actor=client,
                                     detail={"status": status, "reason": reason, "method": method, "path": path[:256]})

    async def flush(self) -> None:
        """Write the pending repeat counts and start a new window (on a window boundary and at shutdown)."""
        async with self._lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        counts, self._counts = self._counts, {}
        window_s = round(self._clock() - self._window_start, 1)
        self._window_start = self._clock()
        for (status, reason, client), count in counts.items():
            if count.repeats:
                await self._audit.record("auth.refused.repeated", actor=client,
                                         detail={"status": status, "reason": reason, "count": count.repeats,
                                                 "window_s": window_s})
