"""``device_credentials``: one row per endpoint with its PSK identity and the key sealed (encrypted, never
hashed: the DTLS server must recover it) by :class:`lwm2m_server.store.keybox.KeyBox`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from lwm2m_server.store.repositories import CredentialRow
from lwm2m_server.store.sql.engine import Sql

_COLUMNS = "endpoint, identity, key_enc, security_mode, created_at, rotated_at, revoked_at"
UPSERT = (
    f"INSERT INTO device_credentials ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(endpoint) DO UPDATE SET "
    "identity = excluded.identity, key_enc = excluded.key_enc, security_mode = excluded.security_mode, "
    "created_at = excluded.created_at, rotated_at = excluded.rotated_at, revoked_at = excluded.revoked_at"
)


class SqlCredentialRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def put(self, row: CredentialRow) -> None:
        await self._sql.execute(
            UPSERT,
            (row.endpoint, row.identity, row.key_enc, row.security_mode, row.created_at, row.rotated_at,
             row.revoked_at),
        )

    async def put_many(self, rows: Sequence[CredentialRow]) -> None:
        await asyncio.gather(*(self.put(row) for row in rows))  # concurrent writes share one transaction

    async def rotate(self, endpoint: str, key_enc: str) -> float:
        now = time.time()
        await self._sql.execute(
            "UPDATE device_credentials SET key_enc = ?, rotated_at = ? WHERE endpoint = ? AND revoked_at IS NULL",
            (key_enc, now, endpoint),
        )
        return now

    async def revoke(self, endpoint: str) -> float:
        now = time.time()
        await self._sql.execute(
            "UPDATE device_credentials SET revoked_at = ? WHERE endpoint = ? AND revoked_at IS NULL", (now, endpoint)
        )
        return now

    async def all(self) -> list[CredentialRow]:
        rows = await self._sql.fetchall(f"SELECT {_COLUMNS} FROM device_credentials ORDER BY endpoint")
        return [CredentialRow(**r) for r in rows]
