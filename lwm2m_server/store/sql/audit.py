"""``audit``: the append-only log of who did what (see :mod:`lwm2m_server.store.audit`)."""

from __future__ import annotations

import json
import time
from typing import Any

from lwm2m_server.store.sql.engine import Sql


class SqlAuditLog:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def record(self, action: str, *, rollout_id: str | None = None, endpoint: str | None = None,
                     actor: str = "system", detail: dict[str, Any] | None = None) -> None:
        await self._sql.execute(
            "INSERT INTO audit (ts, rollout_id, endpoint, actor, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), rollout_id, endpoint, actor, action, json.dumps(detail or {}, default=str)),
        )

    async def entries(self, *, rollout_id: str | None = None, endpoint: str | None = None,
                      action_prefix: str | None = None, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
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
        rows = await self._sql.fetchall(sql, (*params, limit, offset))
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
        return rows
