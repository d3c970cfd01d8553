"""``api_tokens``: one row per API token with its SHA-256 hash, never the token itself."""

from __future__ import annotations

import time

from lwm2m_server.store.repositories import TokenRow
from lwm2m_server.store.sql.engine import Sql


class SqlTokenRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def insert(self, row: TokenRow) -> None:
        await self._sql.execute(
            "INSERT INTO api_tokens (id, name, role, token_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
            (row.id, row.name, row.role, row.token_hash, row.created_at, row.revoked_at),
        )

    async def all(self) -> list[TokenRow]:
        rows = await self._sql.fetchall(
            "SELECT id, name, role, token_hash, created_at, revoked_at FROM api_tokens ORDER BY created_at, id"
        )
        return [TokenRow(**r) for r in rows]

    async def revoke(self, token_id: str) -> float:
        now = time.time()
        await self._sql.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, token_id)
        )
        return now
