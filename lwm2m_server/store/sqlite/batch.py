"""Write batching for SQLite: many small writes, one transaction (and one WAL commit) per batch.

A registration storm produces a registration upsert and an event row per device; committing each one would
serialize the storm on the disk. The queueing is :mod:`lwm2m_server.store.sql.write_behind`'s; this module
commits a batch on SQLite.
"""

from __future__ import annotations

import contextlib

import aiosqlite

from lwm2m_server.logging import get_logger
from lwm2m_server.store.sql.write_behind import WriteBatch, WriteBehindQueue

log = get_logger(__name__)

UPSERT_REGISTRATION = (
    "INSERT OR REPLACE INTO registrations (endpoint, reg_id, host, port, lifetime, lwm2m_version, binding, "
    "queue_mode, root_path, content_formats, objects, instances, sms, registered_at, updated_at, last_seen, "
    "security, node_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
DELETE_REGISTRATION = "DELETE FROM registrations WHERE endpoint = ?"
UPSERT_PROFILE = "INSERT OR REPLACE INTO profiles (endpoint, profile, updated_at) VALUES (?,?,?)"
INSERT_EVENT = "INSERT INTO events (ts, type, endpoint, data) VALUES (?,?,?,?)"


class BatchWriter(WriteBehindQueue):
    backend = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, batch_max: int = 512, batch_window_s: float = 0.005) -> None:
        super().__init__(batch_max, batch_window_s)
        self._conn = conn

    @staticmethod
    async def _apply_owned(conn: aiosqlite.Connection, batch: WriteBatch) -> None:
        upserts = [row for row in batch.regs.values() if row is not None]
        deletes = [(ep,) for ep, row in batch.regs.items() if row is None]
        if deletes:
            await conn.executemany(DELETE_REGISTRATION, deletes)
        if upserts:
            await conn.executemany(UPSERT_REGISTRATION, upserts)
        if batch.profiles:
            await conn.executemany(UPSERT_PROFILE, list(batch.profiles.values()))
        if batch.events:
            await conn.executemany(INSERT_EVENT, batch.events)

    async def _commit(self, batch: WriteBatch) -> None:
        conn = self._conn
        try:
            await conn.execute("BEGIN")
            await self._apply_owned(conn, batch)
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

    async def _commit_individually(self, batch: WriteBatch) -> None:
        """One bad statement from another service must not lose the registrations sharing its batch."""
        conn = self._conn
        await conn.execute("BEGIN")
        await self._apply_owned(conn, batch)
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
