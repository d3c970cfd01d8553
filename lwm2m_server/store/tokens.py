"""API tokens at rest: one row per token with its SHA-256 hash, never the token itself."""

from __future__ import annotations

import time
from dataclasses import dataclass

from lwm2m_server.store.base import Store

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_tokens ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,"
    " created_at REAL NOT NULL, revoked_at REAL)"
)


@dataclass(frozen=True)
class TokenRow:
    id: str
    name: str
    role: str
    token_hash: str
    created_at: float
    revoked_at: float | None


class TokenTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def open(self) -> None:
        await self.store.ensure_schema(SCHEMA)

    async def insert(self, row: TokenRow) -> None:
        await self.store.execute(
            "INSERT INTO api_tokens (id, name, role, token_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
            (row.id, row.name, row.role, row.token_hash, row.created_at, row.revoked_at),
        )

    async def all(self) -> list[TokenRow]:
        rows = await self.store.fetchall(
            "SELECT id, name, role, token_hash, created_at, revoked_at FROM api_tokens ORDER BY created_at, id"
        )
        return [TokenRow(**r) for r in rows]

    async def revoke(self, token_id: str) -> float:
        now = time.time()
        await self.store.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, token_id)
        )
        return now
