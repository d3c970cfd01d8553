"""``queued_requests``: the persisted per-device FIFO of queue mode."""

from __future__ import annotations

from lwm2m_server.store.repositories import QueuedRow
from lwm2m_server.store.sql.engine import Sql


class SqlQueueRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def load(self) -> list[QueuedRow]:
        rows = await self._sql.fetchall("SELECT * FROM queued_requests ORDER BY seq")
        return [QueuedRow(int(r["seq"]), r["endpoint"], r["spec"], bytes(r["payload"]), float(r["timeout"]),
                          float(r["created_at"])) for r in rows]

    async def add(self, row: QueuedRow) -> None:
        await self._sql.execute(
            "INSERT INTO queued_requests (seq, endpoint, spec, payload, timeout, created_at) VALUES (?,?,?,?,?,?)",
            (row.seq, row.endpoint, row.spec, row.payload, row.timeout, row.created_at),
        )

    async def remove(self, seq: int) -> None:
        await self._sql.execute("DELETE FROM queued_requests WHERE seq = ?", (seq,))

    async def remove_endpoint(self, endpoint: str) -> None:
        await self._sql.execute("DELETE FROM queued_requests WHERE endpoint = ?", (endpoint,))
