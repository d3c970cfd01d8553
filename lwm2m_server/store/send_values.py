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
    def __init__(self, store: Store) -> None:
        self.store = store

    async def start(self) -> None:
        await self.store.ensure_schema(SCHEMA)

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
