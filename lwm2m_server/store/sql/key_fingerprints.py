"""``key_fingerprints``: the digest of each secret every node sharing the store must hold; first writer wins."""

from __future__ import annotations

from lwm2m_server.store.sql.engine import Sql


class SqlKeyFingerprints:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def claim(self, name: str, fingerprint: str, node_id: str, now: float) -> tuple[str, str]:
        await self._sql.execute(
            "INSERT INTO key_fingerprints (name, fingerprint, node_id, recorded_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(name) DO NOTHING", (name, fingerprint, node_id, now))
        rows = await self._sql.fetchall("SELECT fingerprint, node_id FROM key_fingerprints WHERE name = ?", (name,))
        return str(rows[0]["fingerprint"]), str(rows[0]["node_id"])
