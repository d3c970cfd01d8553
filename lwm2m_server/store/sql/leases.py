"""``leases``: one row per name; a conditional upsert takes a free or expired lease, or renews one's own.

The ``ON CONFLICT ... DO UPDATE ... WHERE`` is one atomic statement on both engines, so two nodes racing for an
expired lease cannot both win; the read-back tells each caller whether the row is now its own. Expiry uses the
callers' clocks: nodes on different hosts need synchronized time (NTP) within a fraction of the ttl.
"""

from __future__ import annotations

import time

from lwm2m_server.store.repositories import Lease
from lwm2m_server.store.sql.engine import Sql


class SqlLeaseRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def acquire(self, name: str, holder: str, ttl_s: float, *, now: float | None = None) -> bool:
        at = time.time() if now is None else now
        expires = at + ttl_s
        await self._sql.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "holder = excluded.holder, expires_at = excluded.expires_at "
            "WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
            (name, holder, expires, at),
        )
        rows = await self._sql.fetchall("SELECT holder, expires_at FROM leases WHERE name = ?", (name,))
        return bool(rows) and rows[0]["holder"] == holder and float(rows[0]["expires_at"]) == expires

    async def release(self, name: str, holder: str) -> None:
        await self._sql.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    async def leases(self) -> list[Lease]:
        rows = await self._sql.fetchall("SELECT name, holder, expires_at FROM leases ORDER BY name")
        return [Lease(r["name"], r["holder"], float(r["expires_at"])) for r in rows]
