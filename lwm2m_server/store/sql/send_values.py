"""``send_values``: values devices pushed with the LwM2M Send operation, one row per (endpoint, path, time).

The value is stored in the API's JSON value encoding (opaque as ``{"hex": ...}``, objlnk as ``"3:0"``), so a
read hands it back as-is. ``ts`` is the value's own time (seconds since the epoch, from SenML ``bt``+``t``,
or the arrival time when the device gave none); ``received_at`` is when the server got it. Pruned by arrival
time and row count with the store's retention, like the event log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lwm2m_server.store.repositories import SentValue
from lwm2m_server.store.retention import EventPruner, RetentionPolicy
from lwm2m_server.store.sql.engine import Sql

_ROWS_PER_INSERT = 500  # 6 parameters each: well under SQLite's variable limit


class SqlSendValues:
    def __init__(self, sql: Sql, retention: RetentionPolicy | None = None) -> None:
        self._sql = sql
        self.retention = retention
        self._pruner: EventPruner | None = None

    def start(self) -> None:
        if self.retention is not None and self.retention.enabled and self._pruner is None:
            self._pruner = EventPruner(self._sql.fetchall, self._sql.execute, self.retention, table="send_values")
            self._pruner.start()

    async def stop(self) -> None:
        if self._pruner is not None:
            await self._pruner.stop()
            self._pruner = None

    async def prune(self) -> int:
        return await self._pruner.prune() if self._pruner is not None else 0

    @property
    def pruned(self) -> int:
        return self._pruner.pruned if self._pruner is not None else 0

    async def add(self, endpoint: str, values: Sequence[SentValue], received_at: float) -> None:
        for start in range(0, len(values), _ROWS_PER_INSERT):
            chunk = values[start : start + _ROWS_PER_INSERT]
            params: list[Any] = []
            for v in chunk:
                params += [endpoint, v.path, v.ts, json.dumps(v.value, separators=(",", ":")), received_at]
            rows = ",".join(["(?,?,?,?,?)"] * len(chunk))
            await self._sql.execute(
                f"INSERT INTO send_values (endpoint, path, ts, value, received_at) VALUES {rows}", params
            )

    async def query(
        self, endpoint: str, *, path: str | None = None, since: float | None = None, until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        where = ["endpoint = ?"]
        params: list[Any] = [endpoint]
        if path is not None:
            where.append("(path = ? OR substr(path, 1, ?) = ?)")
            params += [path, len(path) + 1, path + "/"]
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if until is not None:
            where.append("ts <= ?")
            params.append(until)
        sql = (
            "SELECT path, ts, value, received_at FROM send_values WHERE "
            + " AND ".join(where)
            + " ORDER BY ts DESC, id DESC LIMIT ?"
        )
        params.append(max(0, int(limit)))
        rows = await self._sql.fetchall(sql, params)
        return [{**r, "value": json.loads(r["value"])} for r in reversed(rows)]
