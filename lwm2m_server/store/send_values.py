"""Values devices pushed with the LwM2M Send operation: one row per (endpoint, path, time) in ``send_values``.

The value is stored in the API's JSON value encoding (opaque as ``{"hex": ...}``, objlnk as ``"3:0"``), so a
read hands it back as-is. ``ts`` is the value's own time (seconds since the epoch, from SenML ``bt``+``t``,
or the arrival time when the device gave none); ``received_at`` is when the server got it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lwm2m_server.store.base import Store
from lwm2m_server.store.retention import EventPruner, RetentionPolicy

SCHEMA = """
CREATE TABLE IF NOT EXISTS send_values (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    path TEXT NOT NULL,
    ts REAL NOT NULL,
    value TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS send_values_endpoint ON send_values (endpoint, ts);
"""

_ROWS_PER_INSERT = 500  # 6 parameters each: well under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class SentValue:
    path: str
    ts: float
    value: Any  # JSON-encodable


class SendValueStore:
    def __init__(self, store: Store, retention: RetentionPolicy | None = None) -> None:
        """``retention``: prune by arrival time and row count on a timer, like the event log (None: keep all)."""
        self.store = store
        self.retention = retention
        self._pruner: EventPruner | None = None

    async def start(self) -> None:
        await self.store.ensure_schema(SCHEMA)
        if self.retention is not None and self.retention.enabled and self._pruner is None:
            self._pruner = EventPruner(self.store.fetchall, self.store.execute, self.retention, table="send_values")
            self._pruner.start()

    async def stop(self) -> None:
        if self._pruner is not None:
            await self._pruner.stop()
            self._pruner = None

    async def prune(self) -> int:
        """Apply the retention now; returns the rows deleted."""
        return await self._pruner.prune() if self._pruner is not None else 0

    @property
    def pruned(self) -> int:
        """Rows deleted by the retention so far (the timer's runs included)."""
        return self._pruner.pruned if self._pruner is not None else 0

    async def add(self, endpoint: str, values: Sequence[SentValue], received_at: float) -> None:
        """Stores one Send's values; returns once committed."""
        for start in range(0, len(values), _ROWS_PER_INSERT):
            chunk = values[start : start + _ROWS_PER_INSERT]
            params: list[Any] = []
            for v in chunk:
                params += [endpoint, v.path, v.ts, json.dumps(v.value, separators=(",", ":")), received_at]
            rows = ",".join(["(?,?,?,?,?)"] * len(chunk))
            await self.store.execute(
                f"INSERT INTO send_values (endpoint, path, ts, value, received_at) VALUES {rows}", params
            )

    async def query(
        self,
        endpoint: str,
        *,
        path: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` values of ``endpoint`` (at or below ``path``, in [since, until]), oldest first."""
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
        rows = await self.store.fetchall(sql, params)
        return [{**r, "value": json.loads(r["value"])} for r in reversed(rows)]
