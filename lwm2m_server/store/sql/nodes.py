"""``nodes``: one row per server node, its heartbeat (``last_seen``) and what it serves; and the device count per
node, from ``registrations.node_id`` (the node a device last registered or updated through)."""

from __future__ import annotations

import json
from typing import Any

from lwm2m_server.store.repositories import NodeRow
from lwm2m_server.store.sql.engine import Sql


class SqlNodeRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def heartbeat(self, node: NodeRow) -> None:
        await self._sql.execute(
            "INSERT INTO nodes (node_id, started_at, last_seen, info) VALUES (?, ?, ?, ?) ON CONFLICT(node_id) "
            "DO UPDATE SET started_at = excluded.started_at, last_seen = excluded.last_seen, info = excluded.info",
            (node.node_id, node.started_at, node.last_seen, json.dumps(node.info, sort_keys=True)),
        )

    async def remove(self, node_id: str) -> None:
        await self._sql.execute("DELETE FROM nodes WHERE node_id = ?", (node_id,))

    async def nodes(self) -> list[NodeRow]:
        rows = await self._sql.fetchall("SELECT node_id, started_at, last_seen, info FROM nodes ORDER BY node_id")
        return [NodeRow(r["node_id"], float(r["started_at"]), float(r["last_seen"]), _info(r["info"])) for r in rows]

    async def device_counts(self) -> dict[str | None, int]:
        rows = await self._sql.fetchall("SELECT node_id, COUNT(*) AS n FROM registrations GROUP BY node_id")
        return {r["node_id"]: int(r["n"]) for r in rows}

    async def sweep_expired(self, alive_since: float, now: float, grace_s: float = 0.0) -> int:
        rows = await self._sql.fetchall(
            "SELECT endpoint FROM registrations WHERE node_id IS NOT NULL AND updated_at + lifetime + ? < ? "
            "AND node_id NOT IN (SELECT node_id FROM nodes WHERE last_seen >= ?)", (grace_s, now, alive_since))
        if rows:
            await self._sql.execute(
                "DELETE FROM registrations WHERE node_id IS NOT NULL AND updated_at + lifetime + ? < ? "
                "AND node_id NOT IN (SELECT node_id FROM nodes WHERE last_seen >= ?)", (grace_s, now, alive_since))
        return len(rows)

    async def owner(self, endpoint: str) -> str | None:
        rows = await self._sql.fetchall("SELECT node_id FROM registrations WHERE endpoint = ?", (endpoint,))
        return rows[0]["node_id"] if rows else None


def _info(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
