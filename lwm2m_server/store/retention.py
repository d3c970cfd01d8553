"""Event-log retention: every notification is logged, so the ``events`` table is pruned by age and row count
(and so is ``send_values``, by when each row arrived).

Pruning works on ``id`` ranges (the rowid), never by scanning ``ts``: ids grow with time, so the rows to drop
are the ones below a boundary id — the first row that is recent enough, and the ``max_rows``-th newest row. The
deletes go through the store's batched writer in chunks, so a large backlog never holds the writer for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lwm2m_server.logging import get_logger

log = get_logger(__name__)

DAY_S = 86400.0
CHUNK_ROWS = 10_000

Fetch = Callable[[str, Sequence[Any]], Awaitable[list[dict[str, Any]]]]
Execute = Callable[[str, Sequence[Any]], Awaitable[None]]


@dataclass(frozen=True)
class RetentionPolicy:
    """``max_age_s``/``max_rows`` of 0 mean no limit; ``interval_s`` is how often the timer prunes."""

    max_age_s: float = 7 * DAY_S
    max_rows: int = 1_000_000
    interval_s: float = 300.0

    @property
    def enabled(self) -> bool:
        return self.max_age_s > 0 or self.max_rows > 0


PRUNABLE: dict[str, str] = {"events": "ts", "send_values": "received_at"}
"""Tables with an ``id`` rowid growing with time, and the column holding that time."""


async def prune_events(
    fetchall: Fetch, execute: Execute, policy: RetentionPolicy, *, now: float | None = None, table: str = "events"
) -> int:
    """Delete rows of ``table`` older than ``max_age_s`` and beyond the newest ``max_rows``; returns how many."""
    if not policy.enabled:
        return 0
    ts = PRUNABLE[table]  # KeyError for anything else: table names never come from outside
    rows = await fetchall(f"SELECT MIN(id) AS lo, MAX(id) AS hi FROM {table}", ())
    lo, hi = rows[0]["lo"], rows[0]["hi"]
    if lo is None:
        return 0
    bound = int(lo)  # rows with id < bound go
    if policy.max_rows > 0:
        bound = max(bound, int(hi) - policy.max_rows + 1)
    if policy.max_age_s > 0:
        cutoff = (time.time() if now is None else now) - policy.max_age_s
        recent = await fetchall(
            f"SELECT id FROM {table} WHERE id >= ? AND {ts} >= ? ORDER BY id LIMIT 1", (bound, cutoff)
        )
        bound = int(recent[0]["id"]) if recent else int(hi) + 1
    if bound <= lo:
        return 0
    counted = await fetchall(f"SELECT COUNT(*) AS n FROM {table} WHERE id < ?", (bound,))
    for start in range(int(lo), bound, CHUNK_ROWS):
        await execute(f"DELETE FROM {table} WHERE id >= ? AND id < ?", (start, min(bound, start + CHUNK_ROWS)))
    return int(counted[0]["n"])


class EventPruner:
    """Prunes once at start (a restart after a long downtime) and then every ``interval_s``."""

    def __init__(self, fetchall: Fetch, execute: Execute, policy: RetentionPolicy, *, table: str = "events") -> None:
        self._fetchall = fetchall
        self._execute = execute
        self.policy = policy
        self.table = table
        self.pruned = 0
        self.runs = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.policy.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"store-{self.table}-pruner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def prune(self) -> int:
        n = await prune_events(self._fetchall, self._execute, self.policy, table=self.table)
        self.runs += 1
        self.pruned += n
        if n:
            log.info("events_pruned", table=self.table, rows=n, max_age_days=self.policy.max_age_s / DAY_S,
                     max_rows=self.policy.max_rows)
        return n

    async def _run(self) -> None:
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("events_prune_failed")
            await asyncio.sleep(max(0.01, self.policy.interval_s))
