"""Rollout persistence: rollouts, per-device rows, compile classes and the append-only audit log.

Everything a running rollout knows is in these tables, so a restarted server resumes where it was.
Writes go through the store's batched writer; the engine calls :meth:`flush` at the transitions that
must not be lost (a device handed to OTA, a wave advancing).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lwm2m_server.rollouts.model import Build, Incompatible, RolloutSpec
from lwm2m_server.rollouts.states import DeviceState, RolloutState
from lwm2m_server.store.audit import AuditLog
from lwm2m_server.store.base import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, current_wave INTEGER NOT NULL DEFAULT 0,
    wave_count INTEGER NOT NULL DEFAULT 0, reason TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rollout_devices (
    rollout_id TEXT NOT NULL, endpoint TEXT NOT NULL, wave INTEGER NOT NULL, class_key TEXT,
    state TEXT NOT NULL, cause TEXT, job_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL,
    PRIMARY KEY (rollout_id, endpoint));
CREATE INDEX IF NOT EXISTS rollout_devices_state ON rollout_devices (rollout_id, state);
CREATE TABLE IF NOT EXISTS rollout_classes (
    rollout_id TEXT NOT NULL, class_key TEXT NOT NULL, target TEXT, variant TEXT, package_sha TEXT, payload_sha TEXT,
    size INTEGER, arena_bytes INTEGER, accuracy REAL, reason TEXT, report TEXT,
    PRIMARY KEY (rollout_id, class_key));
"""


@dataclass
class RolloutRow:
    id: str
    spec: RolloutSpec
    state: RolloutState
    current_wave: int
    wave_count: int
    reason: str | None
    created_at: float
    updated_at: float


@dataclass
class DeviceRow:
    endpoint: str
    wave: int
    class_key: str | None
    state: DeviceState
    cause: str | None
    job_id: str | None
    attempts: int


class RolloutRepository:
    def __init__(self, store: Store, audit_log: AuditLog | None = None) -> None:
        self.store = store
        self.audit_store = audit_log if audit_log is not None else AuditLog(store)

    async def open(self) -> None:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                await self.store.ensure_schema(statement)
        await self.audit_store.open()

    async def flush(self) -> None:
        await self.store.flush()

    # --- rollouts ----------------------------------------------------------------------------------------
    async def create(self, spec: RolloutSpec) -> RolloutRow:
        now = time.time()
        row = RolloutRow(uuid.uuid4().hex[:12], spec, RolloutState.CREATED, 0, 0, None, now, now)
        await self.store.execute(
            "INSERT INTO rollouts (id, spec, state, current_wave, wave_count, reason, created_at, updated_at) "
            "VALUES (?, ?, ?, 0, 0, NULL, ?, ?)",
            (row.id, spec.model_dump_json(), row.state.value, now, now),
        )
        return row

    async def set_state(self, rollout_id: str, state: RolloutState, reason: str | None = None) -> None:
        await self.store.execute(
            "UPDATE rollouts SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
            (state.value, reason, time.time(), rollout_id),
        )

    async def set_wave(self, rollout_id: str, current: int, count: int | None = None) -> None:
        if count is None:
            await self.store.execute(
                "UPDATE rollouts SET current_wave = ?, updated_at = ? WHERE id = ?", (current, time.time(), rollout_id)
            )
        else:
            await self.store.execute(
                "UPDATE rollouts SET current_wave = ?, wave_count = ?, updated_at = ? WHERE id = ?",
                (current, count, time.time(), rollout_id),
            )

    async def get(self, rollout_id: str) -> RolloutRow | None:
        rows = await self.store.fetchall("SELECT * FROM rollouts WHERE id = ?", (rollout_id,))
        return self._rollout(rows[0]) if rows else None

    async def list_rollouts(self, state: RolloutState | None = None) -> list[RolloutRow]:
        if state is None:
            rows = await self.store.fetchall("SELECT * FROM rollouts ORDER BY created_at")
        else:
            rows = await self.store.fetchall("SELECT * FROM rollouts WHERE state = ? ORDER BY created_at",
                                             (state.value,))
        return [self._rollout(r) for r in rows]

    @staticmethod
    def _rollout(r: dict[str, Any]) -> RolloutRow:
        return RolloutRow(
            r["id"], RolloutSpec.model_validate_json(r["spec"]), RolloutState(r["state"]), r["current_wave"],
            r["wave_count"], r["reason"], r["created_at"], r["updated_at"],
        )

    # --- devices -----------------------------------------------------------------------------------------
    async def add_devices(self, rollout_id: str, waves: Iterable[tuple[int, str, str | None]]) -> None:
        now = time.time()
        for wave, endpoint, class_key in waves:
            await self.store.execute(
                "INSERT OR IGNORE INTO rollout_devices (rollout_id, endpoint, wave, class_key, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rollout_id, endpoint, wave, class_key, DeviceState.PENDING.value, now),
            )

    async def set_device(
        self, rollout_id: str, endpoint: str, state: DeviceState, *, cause: str | None = None,
        job_id: str | None = None, attempt: bool = False,
    ) -> None:
        await self.store.execute(
            "UPDATE rollout_devices SET state = ?, cause = ?, job_id = COALESCE(?, job_id), "
            "attempts = attempts + ?, updated_at = ? WHERE rollout_id = ? AND endpoint = ?",
            (state.value, cause, job_id, 1 if attempt else 0, time.time(), rollout_id, endpoint),
        )

    async def devices(self, rollout_id: str, *, wave: int | None = None, state: DeviceState | None = None,
                      limit: int = -1, offset: int = 0) -> list[DeviceRow]:
        sql = "SELECT * FROM rollout_devices WHERE rollout_id = ?"
        params: list[Any] = [rollout_id]
        if wave is not None:
            sql += " AND wave = ?"
            params.append(wave)
        if state is not None:
            sql += " AND state = ?"
            params.append(state.value)
        sql += " ORDER BY wave, endpoint LIMIT ? OFFSET ?"
        params += [limit, offset]
        rows = await self.store.fetchall(sql, tuple(params))
        return [
            DeviceRow(r["endpoint"], r["wave"], r["class_key"], DeviceState(r["state"]), r["cause"], r["job_id"],
                      r["attempts"])
            for r in rows
        ]

    async def counts(self, rollout_id: str) -> list[dict[str, Any]]:
        return await self.store.fetchall(
            "SELECT wave, class_key, state, COUNT(*) AS n FROM rollout_devices WHERE rollout_id = ? "
            "GROUP BY wave, class_key, state",
            (rollout_id,),
        )

    async def class_members(self, rollout_id: str) -> dict[str, str]:
        """class_key -> one endpoint of the class (the first by name), to describe the class by its hardware."""
        rows = await self.store.fetchall(
            "SELECT class_key, MIN(endpoint) AS endpoint FROM rollout_devices WHERE rollout_id = ? GROUP BY class_key",
            (rollout_id,),
        )
        return {r["class_key"] or "unknown": r["endpoint"] for r in rows}

    # --- compile classes ---------------------------------------------------------------------------------
    async def save_class(self, rollout_id: str, target: dict[str, Any] | None, result: Build | Incompatible) -> None:
        if isinstance(result, Build):
            values: tuple[Any, ...] = (result.variant, result.package_sha, result.payload_sha, result.size,
                                       result.arena_bytes, result.accuracy, None)
        else:
            values = (None, None, None, None, None, None, result.reason)
        await self.store.execute(
            "INSERT OR REPLACE INTO rollout_classes (rollout_id, class_key, target, variant, package_sha, payload_sha, "
            "size, arena_bytes, accuracy, reason, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rollout_id, result.class_key, json.dumps(target), *values, json.dumps(result.report, default=str)),
        )

    async def classes(self, rollout_id: str) -> list[dict[str, Any]]:
        rows = await self.store.fetchall(
            "SELECT class_key, target, variant, package_sha, payload_sha, size, arena_bytes, accuracy, reason "
            "FROM rollout_classes "
            "WHERE rollout_id = ? ORDER BY class_key",
            (rollout_id,),
        )
        for r in rows:
            r["target"] = json.loads(r["target"]) if r["target"] else None
        return rows

    # --- audit (the shared log, see lwm2m_server.store.audit) --------------------------------------------
    async def audit(self, action: str, *, rollout_id: str | None = None, endpoint: str | None = None,
                    actor: str = "system", detail: dict[str, Any] | None = None) -> None:
        await self.audit_store.record(action, rollout_id=rollout_id, endpoint=endpoint, actor=actor, detail=detail)

    async def audit_log(self, *, rollout_id: str | None = None, endpoint: str | None = None,
                                limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        return await self.audit_store.entries(rollout_id=rollout_id, endpoint=endpoint, limit=limit, offset=offset)
