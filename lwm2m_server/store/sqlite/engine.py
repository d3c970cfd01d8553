"""SQLite store (aiosqlite, WAL mode): the default persistence, one file under the data dir.

Durability: WAL with ``synchronous=NORMAL`` (default) makes every committed batch survive a process crash
(SIGKILL); an OS crash or power loss may lose the last committed batches but never corrupts the file.
``synchronous="FULL"`` adds an fsync per batch. See :mod:`lwm2m_server.store.base` for the write-behind rules.

The schema is versioned (:mod:`lwm2m_server.store.sqlite.migrations`, applied on open). Each concern's SQL is
one repository module here (``store.queue``, ``store.ota_jobs``, ...); they all share this connection and its
batched writer through :meth:`SqliteStore.execute`/:meth:`SqliteStore.fetchall`, which are for code under
``lwm2m_server/store/`` only.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from lwm2m_server.logging import get_logger
from lwm2m_server.store.retention import EventPruner, RetentionPolicy, prune_events
from lwm2m_server.store.sql.engine import Params
from lwm2m_server.store.sql.soft_state import SoftStateTables
from lwm2m_server.store.sql.wiring import SqlRepositories
from lwm2m_server.store.sqlite.batch import BatchWriter
from lwm2m_server.store.sqlite.migrations import migrate

log = get_logger(__name__)

class SqliteStore(SoftStateTables, SqlRepositories):
    def __init__(
        self,
        path: str | Path,
        *,
        batch_max: int = 512,
        batch_window_ms: float = 5.0,
        synchronous: str = "NORMAL",
        retention: RetentionPolicy | None = None,
        node_id: str | None = None,
    ) -> None:
        """``retention``: prune the event log by age/row count on a timer (None: keep every event).
        ``node_id``: stamped on every registration row as its owner (one node: a SQLite file is not shared)."""
        self.path = Path(path)
        self.node_id = node_id
        self.batch_max = batch_max
        self.batch_window_ms = batch_window_ms
        self.synchronous = synchronous.upper()
        if self.synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF/NORMAL/FULL/EXTRA, not {synchronous!r}")
        self._conn: aiosqlite.Connection | None = None
        self._writer: BatchWriter | None = None
        self.retention = retention
        self._pruner: EventPruner | None = None
        self.schema_version = 0
        self._wire_repositories(self, retention)

    @property
    def writer(self) -> BatchWriter:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    async def open(self) -> None:
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={self.synchronous}")
        await conn.execute("PRAGMA busy_timeout=5000")
        try:
            self.schema_version = await migrate(conn)
        except Exception:
            await conn.close()
            raise
        self._conn = conn
        self._writer = BatchWriter(conn, self.batch_max, self.batch_window_ms / 1000.0)
        self._writer.start()
        if self.retention is not None and self.retention.enabled:
            self._pruner = EventPruner(self.fetchall, self.execute, self.retention)
            self._pruner.start()
        self.send_values.start()
        log.info("store_opened", path=str(self.path), synchronous=self.synchronous, schema=self.schema_version)

    async def close(self) -> None:
        if self._conn is None:
            return
        if self._pruner is not None:
            await self._pruner.stop()
            self._pruner = None
        await self.send_values.stop()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self._conn.close()
        self._conn = None

    async def prune_events(self, policy: RetentionPolicy | None = None, *, now: float | None = None) -> int:
        """Apply ``policy`` (default: the store's retention) now; returns the number of events deleted."""
        chosen = policy or self.retention
        if chosen is None:
            return 0
        return await prune_events(self.fetchall, self.execute, chosen, now=now)

    # -- SQL access for the repositories (code under lwm2m_server/store/ only) ------------------------------
    async def ensure_schema(self, ddl: str) -> None:
        await self.writer.flush()
        await self.conn.executescript(ddl)

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self.writer.put_sql(sql, params)

    async def execute_together(self, statements: Sequence[tuple[str, Params]]) -> None:
        futures = [self.writer.put_sql(sql, params) for sql, params in statements]  # one commit
        for outcome in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        await self.writer.flush()
        async with self.conn.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [dict(r) for r in rows]

    async def flush(self) -> None:
        await self.writer.flush()


__all__ = ["SqliteStore"]
