"""Write-behind for PostgreSQL: registrations, profiles and events of a batch go to the server in one
transaction (one WAL flush), coalesced per endpoint like the SQLite writer. A batch commits when ``batch_max``
writes are queued or ``batch_window_s`` after the first, whichever comes first. The repositories' committed
writes (:meth:`PgBatchWriter.put_sql`) share that transaction too, and their callers are answered after the
commit; if one of them fails, the batch is retried with each of them in its own transaction, so one bad
statement fails only its own caller.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from lwm2m_server.logging import get_logger
from lwm2m_server.store.sql.write_behind import WriteBatch, WriteBehindQueue

log = get_logger(__name__)

REG_COLUMNS = ("endpoint, reg_id, host, port, lifetime, lwm2m_version, binding, queue_mode, root_path, "
               "content_formats, objects, instances, sms, registered_at, updated_at, last_seen, security, node_id")
_UPDATED = ", ".join(f"{c} = excluded.{c}" for c in REG_COLUMNS.split(", ")[1:])
# SQLite's INSERT OR REPLACE, made safe for several nodes writing at once: one atomic upsert per endpoint, and
# a write never replaces a *newer* registration (a node's stale copy of a device that has since registered
# through another node loses; Updates keep registered_at, so the owner's own writes always apply).
UPSERT_REGISTRATION = (f"INSERT INTO registrations ({REG_COLUMNS}) VALUES "
                       "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) "
                       f"ON CONFLICT (endpoint) DO UPDATE SET {_UPDATED} "
                       "WHERE excluded.registered_at >= registrations.registered_at")
# a reused reg_id replaces its old holder (another endpoint), as INSERT OR REPLACE does
DELETE_REUSED_IDS = ("DELETE FROM registrations r USING unnest($1::text[], $2::text[]) AS n(endpoint, reg_id) "
                     "WHERE r.reg_id = n.reg_id AND r.endpoint <> n.endpoint")
# A de-registration or expiry removes the row only while this node owns it: once the device has registered
# through another node, the row is that node's (a stale in-memory copy here must not delete it).
DELETE_OWNED = ("DELETE FROM registrations WHERE endpoint = ANY($1::text[]) "
                "AND ($2::text IS NULL OR node_id IS NULL OR node_id = $2::text)")
UPSERT_PROFILE = ("INSERT INTO profiles (endpoint, profile, updated_at) VALUES ($1,$2,$3) ON CONFLICT (endpoint) "
                  "DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at")
INSERT_EVENT = "INSERT INTO events (ts, type, endpoint, data) VALUES ($1,$2,$3,$4)"


class PgBatchWriter(WriteBehindQueue):
    backend = "postgres"
    task_name = "pg-store-writer"

    def __init__(self, pool: asyncpg.Pool, batch_max: int = 512, batch_window_s: float = 0.005,
                 node_id: str | None = None) -> None:
        super().__init__(batch_max, batch_window_s)
        self._pool = pool
        self.node_id = node_id

    async def _commit(self, batch: WriteBatch) -> None:
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await self._apply_owned(conn, batch)
                    for sql, args, _ in batch.generic:
                        await conn.execute(sql, *args)
            except Exception as exc:
                if not batch.generic:
                    raise
                log.warning("store_batch_retry_individually", backend="postgres", error=str(exc), writes=batch.size)
                await self._commit_individually(conn, batch)
                return
        for _, _, fut in batch.generic:
            if not fut.done():
                fut.set_result(None)

    async def _commit_individually(self, conn: Any, batch: WriteBatch) -> None:
        async with conn.transaction():
            await self._apply_owned(conn, batch)
        for sql, args, fut in batch.generic:
            try:
                async with conn.transaction():
                    await conn.execute(sql, *args)
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(None)

    async def _apply_owned(self, conn: Any, batch: WriteBatch) -> None:
        upserts = [row for row in batch.regs.values() if row is not None]
        deletes = [ep for ep, row in batch.regs.items() if row is None]
        if deletes:
            await conn.execute(DELETE_OWNED, deletes, self.node_id)
        if upserts:
            await conn.execute(DELETE_REUSED_IDS, [row[0] for row in upserts], [row[1] for row in upserts])
            await conn.executemany(UPSERT_REGISTRATION, upserts)
        if batch.profiles:
            await conn.executemany(UPSERT_PROFILE, list(batch.profiles.values()))
        if batch.events:
            await conn.executemany(INSERT_EVENT, batch.events)
