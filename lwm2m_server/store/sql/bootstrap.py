"""``bootstrap_configs``: one row per endpoint with what the bootstrap server provisions on it."""

from __future__ import annotations

from lwm2m_server.store.repositories import BootstrapRow
from lwm2m_server.store.sql.engine import Sql

_COLUMNS = "endpoint, server_uri, security_mode, lifetime, binding, ssid, delete_first, created_at"
UPSERT = (
    f"INSERT INTO bootstrap_configs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(endpoint) DO UPDATE SET "
    "server_uri = excluded.server_uri, security_mode = excluded.security_mode, lifetime = excluded.lifetime, "
    "binding = excluded.binding, ssid = excluded.ssid, delete_first = excluded.delete_first, "
    "created_at = excluded.created_at"
)


def _row(r: dict[str, object]) -> BootstrapRow:
    return BootstrapRow(**{**r, "delete_first": bool(r["delete_first"])})  # type: ignore[arg-type]


class SqlBootstrapRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def put(self, row: BootstrapRow) -> None:
        await self._sql.execute(
            UPSERT,
            (row.endpoint, row.server_uri, row.security_mode, row.lifetime, row.binding, row.ssid,
             bool(row.delete_first), row.created_at),
        )

    async def get(self, endpoint: str) -> BootstrapRow | None:
        rows = await self._sql.fetchall(f"SELECT {_COLUMNS} FROM bootstrap_configs WHERE endpoint = ?", (endpoint,))
        return _row(rows[0]) if rows else None

    async def remove(self, endpoint: str) -> bool:
        if await self.get(endpoint) is None:
            return False
        await self._sql.execute("DELETE FROM bootstrap_configs WHERE endpoint = ?", (endpoint,))
        return True

    async def all(self) -> list[BootstrapRow]:
        rows = await self._sql.fetchall(f"SELECT {_COLUMNS} FROM bootstrap_configs ORDER BY endpoint")
        return [_row(r) for r in rows]
