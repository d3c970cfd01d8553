"""Device credentials at rest: one row per endpoint with its PSK identity and the key *encrypted* (Fernet,
AES-128-CBC + HMAC-SHA256) under a key file in the data dir: the DTLS server must recover the key, so a hash
would not do. Revoked rows stay (with ``revoked_at``) as the device's history until the endpoint is added again.
All SQL for credentials lives here.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from lwm2m_server.store.base import Store

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS device_credentials ("
    " endpoint TEXT PRIMARY KEY, identity TEXT NOT NULL, key_enc TEXT NOT NULL, security_mode TEXT NOT NULL,"
    " created_at REAL NOT NULL, rotated_at REAL, revoked_at REAL);"
    "CREATE INDEX IF NOT EXISTS device_credentials_identity ON device_credentials (identity)"
)
_COLUMNS = "endpoint, identity, key_enc, security_mode, created_at, rotated_at, revoked_at"


@dataclass(frozen=True)
class CredentialRow:
    endpoint: str
    identity: str
    key_enc: str
    security_mode: str
    created_at: float
    rotated_at: float | None
    revoked_at: float | None


class KeyBox:
    """Encrypts PSK keys with a Fernet key kept in ``<data_dir>/credentials.key`` (created 0600 on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fernet: Fernet | None = None

    def _box(self) -> Fernet:
        if self._fernet is None:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(Fernet.generate_key())
            self._fernet = Fernet(self.path.read_bytes().strip())
        return self._fernet

    def seal(self, key: bytes) -> str:
        return self._box().encrypt(key).decode("ascii")

    def open(self, sealed: str) -> bytes:
        try:
            return self._box().decrypt(sealed.encode("ascii"))
        except InvalidToken as exc:
            raise ValueError(f"a credential cannot be decrypted with {self.path} (wrong key file?)") from exc


class CredentialTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def open(self) -> None:
        await self.store.ensure_schema(SCHEMA)

    async def put(self, row: CredentialRow) -> None:
        """Insert or replace the endpoint's row (a new or re-added credential)."""
        await self.store.execute(
            f"INSERT OR REPLACE INTO device_credentials ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.endpoint, row.identity, row.key_enc, row.security_mode, row.created_at, row.rotated_at,
             row.revoked_at),
        )

    async def put_many(self, rows: list[CredentialRow]) -> None:
        await asyncio.gather(*(self.put(row) for row in rows))  # concurrent writes share one transaction

    async def rotate(self, endpoint: str, key_enc: str) -> float:
        now = time.time()
        await self.store.execute(
            "UPDATE device_credentials SET key_enc = ?, rotated_at = ? WHERE endpoint = ? AND revoked_at IS NULL",
            (key_enc, now, endpoint),
        )
        return now

    async def revoke(self, endpoint: str) -> float:
        now = time.time()
        await self.store.execute(
            "UPDATE device_credentials SET revoked_at = ? WHERE endpoint = ? AND revoked_at IS NULL", (now, endpoint)
        )
        return now

    async def all(self) -> list[CredentialRow]:
        rows = await self.store.fetchall(f"SELECT {_COLUMNS} FROM device_credentials ORDER BY endpoint")
        return [CredentialRow(**r) for r in rows]
