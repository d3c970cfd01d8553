"""Registrations, device profiles and the event log, the same on every backend: writes go to the backend's
batch writer (write-behind, see :mod:`lwm2m_server.store.base`), reads are plain SQL through ``fetchall``.

A backend mixes :class:`SoftStateTables` in and supplies ``_writer``, ``node_id`` and ``fetchall``; only how it
reloads registrations at start may differ (PostgreSQL reloads just its own node's)."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from lwm2m_server.logging import get_logger
from lwm2m_server.registration import Registration
from lwm2m_server.store.sql.engine import Params

log = get_logger(__name__)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


class WriteBehind(Protocol):
    def put_registration(self, endpoint: str, row: tuple[Any, ...] | None) -> None: ...
    def put_profile(self, endpoint: str, row: tuple[Any, ...]) -> None: ...
    def put_event(self, row: tuple[Any, ...]) -> None: ...


def registrations_from_rows(rows: list[dict[str, Any]]) -> list[Registration]:
    """Rows that no longer parse are logged and skipped: one bad row must not keep the server from starting."""
    out = []
    for row in rows:
        try:
            out.append(Registration.from_row(row))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("store_bad_registration_row", endpoint=row.get("endpoint"), error=str(exc))
    return out


class SoftStateTables:
    node_id: str | None
    _writer: WriteBehind | None

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    @property
    def _soft_writer(self) -> WriteBehind:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    # -- registrations ----------------------------------------------------------------------------------------
    async def save_registration(self, reg: Registration) -> None:
        self._soft_writer.put_registration(reg.endpoint, (*reg.to_row(), self.node_id))

    async def delete_registration(self, endpoint: str) -> None:
        self._soft_writer.put_registration(endpoint, None)

    async def load_registrations(self) -> list[Registration]:
        return registrations_from_rows(await self.fetchall("SELECT * FROM registrations ORDER BY registered_at"))

    async def fleet_registrations(self) -> list[Registration]:
        # every node's devices (PostgreSQL's load_registrations returns only this node's)
        return registrations_from_rows(await self.fetchall("SELECT * FROM registrations ORDER BY registered_at"))

    async def fleet_registration(self, endpoint: str) -> Registration | None:
        found = registrations_from_rows(await self.fetchall("SELECT * FROM registrations WHERE endpoint = ?",
                                                            (endpoint,)))
        return found[0] if found else None

    # -- profiles ---------------------------------------------------------------------------------------------
    async def save_profile(self, endpoint: str, profile: dict[str, Any]) -> None:
        self._soft_writer.put_profile(endpoint, (endpoint, dumps(profile), time.time()))

    async def load_profile(self, endpoint: str) -> dict[str, Any] | None:
        rows = await self.fetchall("SELECT profile FROM profiles WHERE endpoint = ?", (endpoint,))
        return json.loads(rows[0]["profile"]) if rows else None

    async def load_profiles(self) -> dict[str, dict[str, Any]]:
        rows = await self.fetchall("SELECT endpoint, profile FROM profiles")
        return {r["endpoint"]: json.loads(r["profile"]) for r in rows}

    # -- event log --------------------------------------------------------------------------------------------
    async def append_event(
        self, type: str, endpoint: str | None, data: dict[str, Any], ts: float | None = None
    ) -> None:
        self._soft_writer.put_event((ts if ts is not None else time.time(), type, endpoint, dumps(data)))

    def append_event_nowait(
        self, type: str, endpoint: str | None, data: dict[str, Any], ts: float | None = None, *,
        encoded: str | None = None,
    ) -> str | None:
        if self._writer is None:  # closed: events emitted during shutdown are not logged
            return None
        text = encoded if encoded is not None else dumps(data)
        self._writer.put_event((ts if ts is not None else time.time(), type, endpoint, text))
        return text

    async def events(
        self, *, endpoint: str | None = None, type: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` matching events, oldest first."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("endpoint = ?", endpoint), ("type = ?", type), ("ts >= ?", since)):
            if value is not None:
                where.append(column)
                params.append(value)
        sql = "SELECT id, ts, type, endpoint, data FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(0, int(limit)))
        rows = await self.fetchall(sql, params)
        return [{**r, "data": json.loads(r["data"])} for r in reversed(rows)]
