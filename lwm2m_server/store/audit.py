"""The append-only audit log: who did what, when (rollout actions, token changes, refused logins).

One table for every area; ``rollout_id`` and ``endpoint`` are optional subjects so rollout and device
histories stay queryable, ``actor`` is who acted (``system``, ``rest``, a token name, a client address).
"""

from __future__ import annotations

import json
import time
from typing import Any

from lwm2m_server.store.base import Store

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, rollout_id TEXT, endpoint TEXT,"
    " actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT)",
    "CREATE INDEX IF NOT EXISTS audit_rollout ON audit (rollout_id)",
    "CREATE INDEX IF NOT EXISTS audit_endpoint ON audit (endpoint)",
    "CREATE INDEX IF NOT EXISTS audit_action ON audit (action)",
)


class AuditLog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._ready = False

    async def open(self) -> None:
        if not self._ready:
            for ddl in SCHEMA:
                await self.store.ensure_schema(ddl)
            self._ready = True

    async def record(self, action: str, *, rollout_id: str | None = None, endpoint: str | None = None,
                     actor: str = "system", detail: dict[str, Any] | None = None) -> None:
        await self.open()
        await self.store.execute(
            "INSERT INTO audit (ts, rollout_id, endpoint, actor, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), rollout_id, endpoint, actor, action, json.dumps(detail or {}, default=str)),
        )

    async def entries(self, *, rollout_id: str | None = None, endpoint: str | None = None,
                      action_prefix: str | None = None, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        """Entries oldest first; ``action_prefix`` (e.g. ``"auth."``) selects one area."""
        await self.open()
        sql, params = "SELECT * FROM audit WHERE 1 = 1", list[Any]()
        if rollout_id is not None:
            sql += " AND rollout_id = ?"
            params.append(rollout_id)
        if endpoint is not None:
            sql += " AND endpoint = ?"
            params.append(endpoint)
        if action_prefix is not None:
            sql += " AND substr(action, 1, ?) = ?"
            params += [len(action_prefix), action_prefix]
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        rows = await self.store.fetchall(sql, (*params, limit, offset))
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
        return rows
