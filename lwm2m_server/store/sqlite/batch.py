"""Write batching for SQLite: many small writes, one transaction (and one WAL commit) per batch.

A registration storm produces a registration upsert and an event row per device; committing each one would
serialize the storm on the disk. Writes are accumulated in the *open* batch and a single writer task commits
it when ``batch_max`` writes are queued or ``batch_window_s`` after the first one, whichever comes first.
Registration and profile writes are coalesced per endpoint (only the last state of a batch is written).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from lwm2m_server.logging import get_logger
from lwm2m_server.store.sql.engine import Params

log = get_logger(__name__)

UPSERT_REGISTRATION = (
    "INSERT OR REPLACE INTO registrations (endpoint, reg_id, host, port, lifetime, lwm2m_version, binding, "
    "queue_mode, root_path, content_formats, objects, instances, sms, registered_at, updated_at, last_seen, "
    "security, node_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
DELETE_REGISTRATION = "DELETE FROM registrations WHERE endpoint = ?"
UPSERT_PROFILE = "INSERT OR REPLACE INTO profiles (endpoint, profile, updated_at) VALUES (?,?,?)"
INSERT_EVENT = "INSERT INTO events (ts, type, endpoint, data) VALUES (?,?,?,?)"


@dataclass
class WriteBatch:
    done: asyncio.Future[None]
    regs: dict[str, tuple[Any, ...] | None] = field(default_factory=dict)
    profiles: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    generic: list[tuple[str, Params, asyncio.Future[None]]] = field(default_factory=list)
    size: int = 0

    async def apply_owned(self, conn: aiosqlite.Connection) -> None:
        upserts = [row for row in self.regs.values() if row is not None]
        deletes = [(ep,) for ep, row in self.regs.items() if row is None]
        if deletes:
            await conn.executemany(DELETE_REGISTRATION, deletes)
        if upserts:
            await conn.executemany(UPSERT_REGISTRATION, upserts)
        if self.profiles:
            await conn.executemany(UPSERT_PROFILE, list(self.profiles.values()))
        if self.events:
            await conn.executemany(INSERT_EVENT, self.events)


class BatchWriter:
    def __init__(self, conn: aiosqlite.Connection, batch_max: int = 512, batch_window_s: float = 0.005) -> None:
        self._conn = conn
        self.batch_max = max(1, batch_max)
        self.window = max(0.0, batch_window_s)
        self._open = self._new_batch()
        self._inflight: asyncio.Future[None] | None = None
        self._kick = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches_committed = 0
        self.writes_committed = 0

    @staticmethod
    def _new_batch() -> WriteBatch:
        return WriteBatch(asyncio.get_running_loop().create_future())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="store-writer")

    async def close(self) -> None:
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    # -- queueing ---------------------------------------------------------------------------------------------
    def _added(self) -> None:
        self._open.size += 1
        self._kick.set()
        if self._open.size >= self.batch_max:
            self._full.set()

    def put_registration(self, endpoint: str, row: tuple[Any, ...] | None) -> None:
        self._open.regs[endpoint] = row
        self._added()

    def put_profile(self, endpoint: str, row: tuple[Any, ...]) -> None:
        self._open.profiles[endpoint] = row
        self._added()

    def put_event(self, row: tuple[Any, ...]) -> None:
        self._open.events.append(row)
        self._added()

    def put_sql(self, sql: str, params: Params) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._open.generic.append((sql, params, fut))
        self._added()
        return fut

    @property
    def pending(self) -> int:
        return self._open.size

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (or failed and reported)."""
        if self._open.size:
            await asyncio.shield(self._open.done)
        elif self._inflight is not None:
            await asyncio.shield(self._inflight)

    # -- the writer task --------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._kick.wait()
            if self._open.size < self.batch_max and self.window > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.window)
            batch, self._open = self._open, self._new_batch()
            self._kick.clear()
            self._full.clear()
            if not batch.size:
                batch.done.set_result(None)
                continue
            self._inflight = batch.done
            try:
                await self._commit(batch)
            except Exception:
                log.exception("store_batch_failed", writes=batch.size)
            finally:
                self._inflight = None
                if not batch.done.done():
                    batch.done.set_result(None)

    async def _commit(self, batch: WriteBatch) -> None:
        conn = self._conn
        try:
            await conn.execute("BEGIN")
            await batch.apply_owned(conn)
            for sql, params, _ in batch.generic:
                await conn.execute(sql, params)
            await conn.execute("COMMIT")
        except Exception as exc:
            await self._rollback()
            if not batch.generic:
                raise
            log.warning("store_batch_retry_individually", error=str(exc), writes=batch.size)
            await self._commit_individually(batch)
        else:
            for _, _, fut in batch.generic:
                if not fut.done():
                    fut.set_result(None)
        self.batches_committed += 1
        self.writes_committed += batch.size

    async def _commit_individually(self, batch: WriteBatch) -> None:
        """One bad statement from another service must not lose the registrations sharing its batch."""
        conn = self._conn
        await conn.execute("BEGIN")
        await batch.apply_owned(conn)
        await conn.execute("COMMIT")
        for sql, params, fut in batch.generic:
            try:
                await conn.execute("BEGIN")
                await conn.execute(sql, params)
                await conn.execute("COMMIT")
            except Exception as exc:
                await self._rollback()
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(None)

    async def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            await self._conn.execute("ROLLBACK")
