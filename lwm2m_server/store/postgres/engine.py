"""PostgreSQL store (asyncpg): the backend for several server nodes sharing one database.

Same behaviour as :class:`~lwm2m_server.store.sqlite.SqliteStore`: registrations, profiles and events are
write-behind in batches (:mod:`lwm2m_server.store.postgres.batch`), every other write is committed before it
returns (concurrent callers share one transaction), every read first waits for the writes queued before it,
and the repositories run the same SQL (:mod:`lwm2m_server.store.sql`). Crash safety is PostgreSQL's: a committed
transaction survives the server process being killed (and, with the default ``synchronous_commit``, the machine too).
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from lwm2m_server.logging import get_logger
from lwm2m_server.registration import Registration
from lwm2m_server.store.postgres.batch import PgBatchWriter
from lwm2m_server.store.postgres.migrations import migrate
from lwm2m_server.store.retention import EventPruner, RetentionPolicy, prune_events
from lwm2m_server.store.sql.engine import Params
from lwm2m_server.store.sql.soft_state import SoftStateTables, registrations_from_rows
from lwm2m_server.store.sql.wiring import SqlRepositories

log = get_logger(__name__)

_MARK = re.compile(r"\?")


@functools.lru_cache(maxsize=512)
def to_dollar(sql: str) -> str:
    """``?`` placeholders (the repositories' style) to asyncpg's ``$1, $2, ...``."""
    counter = iter(range(1, 1 << 20))
    return _MARK.sub(lambda _: f"${next(counter)}", sql)


def _args(params: Params) -> list[Any]:
    if isinstance(params, Mapping):
        raise TypeError("the PostgreSQL store takes positional ? parameters only")
    return list(params)


class PostgresStore(SoftStateTables, SqlRepositories):
    def __init__(
        self,
        dsn: str,
        *,
        batch_max: int = 512,
        batch_window_ms: float = 5.0,
        retention: RetentionPolicy | None = None,
        pool_max: int = 8,
        node_id: str | None = None,
    ) -> None:
        """``node_id``: this node; registrations it writes are stamped as its own, it reloads only its own (and
        unowned) ones on start, and it deletes a registration only while it owns it (see the batch writer)."""
        self.dsn = dsn
        self.node_id = node_id
        self.batch_max = batch_max
        self.batch_window_ms = batch_window_ms
        self.retention = retention
        self.pool_max = pool_max
        self._pool: asyncpg.Pool | None = None
        self._writer: PgBatchWriter | None = None
        self._pruner: EventPruner | None = None
        self.schema_version = 0
        self._wire_repositories(self, retention)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    @property
    def writer(self) -> PgBatchWriter:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_max)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # an OSError, so `serve` reports it like a busy port; the DSN may hold a password: not repeated
            raise ConnectionError(f"cannot open the PostgreSQL store: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                self.schema_version = await migrate(conn)
        except Exception:
            await pool.close()
            raise
        self._pool = pool
        self._writer = PgBatchWriter(pool, self.batch_max, self.batch_window_ms / 1000.0, self.node_id)
        self._writer.start()
        if self.retention is not None and self.retention.enabled:
            self._pruner = EventPruner(self.fetchall, self.execute, self.retention)
            self._pruner.start()
        self.send_values.start()
        log.info("store_opened", backend="postgres", schema=self.schema_version)

    async def close(self) -> None:
        if self._pool is None:
            return
        if self._pruner is not None:
            await self._pruner.stop()
            self._pruner = None
        await self.send_values.stop()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        await self._pool.close()
        self._pool = None

    async def load_registrations(self) -> list[Registration]:
        if self.node_id is None:
            return await super().load_registrations()
        # another node's devices are that node's to serve and expire
        rows = await self.fetchall("SELECT * FROM registrations WHERE node_id IS NULL OR node_id = ? "
                                   "ORDER BY registered_at", (self.node_id,))
        return registrations_from_rows(rows)

    async def prune_events(self, policy: RetentionPolicy | None = None, *, now: float | None = None) -> int:
        chosen = policy or self.retention
        if chosen is None:
            return 0
        return await prune_events(self.fetchall, self.execute, chosen, now=now)

    # -- SQL access for the repositories (code under lwm2m_server/store/ only) ------------------------------
    async def execute(self, sql: str, params: Params = ()) -> None:
        await self.writer.put_sql(to_dollar(sql), _args(params))

    async def execute_together(self, statements: Sequence[tuple[str, Params]]) -> None:
        futures = [self.writer.put_sql(to_dollar(sql), _args(params)) for sql, params in statements]  # one commit
        for outcome in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        await self.writer.flush()
        rows = await self.pool.fetch(to_dollar(sql), *_args(params))
        return [dict(r) for r in rows]

    async def flush(self) -> None:
        await self.writer.flush()
