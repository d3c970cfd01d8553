"""``rollouts``, ``rollout_devices`` and ``rollout_classes``: everything a running rollout knows."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from lwm2m_server.rollouts.model import Build, Incompatible, RolloutSpec
from lwm2m_server.rollouts.records import DeviceRow, RolloutRow
from lwm2m_server.rollouts.states import DeviceState, RolloutState
from lwm2m_server.store.sql.engine import Sql

NO_LIMIT = 2**62


class SqlRolloutTables:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    # --- rollouts ----------------------------------------------------------------------------------------
    async def create(self, spec: RolloutSpec) -> RolloutRow:
        now = time.time()
        row = RolloutRow(uuid.uuid4().hex[:12], spec, RolloutState.CREATED, 0, 0, None, now, now)
        await self._sql.execute(
            "INSERT INTO rollouts (id, spec, state, current_wave, wave_count, reason, created_at, updated_at) "
            "VALUES (?, ?, ?, 0, 0, NULL, ?, ?)",
            (row.id, spec.model_dump_json(), row.state.value, now, now),
        )
        return row

    async def set_state(self, rollout_id: str, state: RolloutState, reason: str | None = None) -> None:
        await self._sql.execute(
            "UPDATE rollouts SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
            (state.value, reason, time.time(), rollout_id),
        )

    async def set_wave(self, rollout_id: str, current: int, count: int | None = None) -> None:
        if count is None:
            await self._sql.execute(
                "UPDATE rollouts SET current_wave = ?, updated_at = ? WHERE id = ?", (current, time.time(), rollout_id)
            )
        else:
            await self._sql.execute(
                "UPDATE rollouts SET current_wave = ?, wave_count = ?, updated_at = ? WHERE id = ?",
                (current, count, time.time(), rollout_id),
            )

    async def get(self, rollout_id: str) -> RolloutRow | None:
        rows = await self._sql.fetchall("SELECT * FROM rollouts WHERE id = ?", (rollout_id,))
        return _rollout(rows[0]) if rows else None

    async def list_rollouts(self, state: RolloutState | None = None) -> list[RolloutRow]:
        if state is None:
            rows = await self._sql.fetchall("SELECT * FROM rollouts ORDER BY created_at")
        else:
            rows = await self._sql.fetchall("SELECT * FROM rollouts WHERE state = ? ORDER BY created_at",
                                            (state.value,))
        return [_rollout(r) for r in rows]

    # --- devices -----------------------------------------------------------------------------------------
    async def add_devices(self, rollout_id: str, waves: Iterable[tuple[int, str, str | None]]) -> None:
        now = time.time()
        for wave, endpoint, class_key in waves:
            await self._sql.execute(
                "INSERT INTO rollout_devices (rollout_id, endpoint, wave, class_key, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(rollout_id, endpoint) DO NOTHING",
                (rollout_id, endpoint, wave, class_key, DeviceState.PENDING.value, now),
            )

    async def set_device(
        self, rollout_id: str, endpoint: str, state: DeviceState, *, cause: str | None = None,
        job_id: str | None = None, attempt: bool = False,
    ) -> None:
        await self._sql.execute(
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
        params += [limit if limit >= 0 else NO_LIMIT, offset]
        rows = await self._sql.fetchall(sql, tuple(params))
        return [
            DeviceRow(r["endpoint"], r["wave"], r["class_key"], DeviceState(r["state"]), r["cause"], r["job_id"],
                      r["attempts"])
            for r in rows
        ]

    async def counts(self, rollout_id: str) -> list[dict[str, Any]]:
        return await self._sql.fetchall(
            "SELECT wave, class_key, state, COUNT(*) AS n FROM rollout_devices WHERE rollout_id = ? "
            "GROUP BY wave, class_key, state",
            (rollout_id,),
        )

    async def class_members(self, rollout_id: str) -> dict[str, str]:
        rows = await self._sql.fetchall(
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
        await self._sql.execute(
            "INSERT INTO rollout_classes (rollout_id, class_key, target, variant, package_sha, payload_sha, "
            "size, arena_bytes, accuracy, reason, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(rollout_id, class_key) DO UPDATE SET target=excluded.target, variant=excluded.variant, "
            "package_sha=excluded.package_sha, payload_sha=excluded.payload_sha, size=excluded.size, "
            "arena_bytes=excluded.arena_bytes, accuracy=excluded.accuracy, reason=excluded.reason, "
            "report=excluded.report",
            (rollout_id, result.class_key, json.dumps(target), *values, json.dumps(result.report, default=str)),
        )

    async def classes(self, rollout_id: str) -> list[dict[str, Any]]:
        rows = await self._sql.fetchall(
            "SELECT class_key, target, variant, package_sha, payload_sha, size, arena_bytes, accuracy, reason "
            "FROM rollout_classes WHERE rollout_id = ? ORDER BY class_key",
            (rollout_id,),
        )
        for r in rows:
            r["target"] = json.loads(r["target"]) if r["target"] else None
        return rows


def _rollout(r: dict[str, Any]) -> RolloutRow:
    return RolloutRow(
        r["id"], RolloutSpec.model_validate_json(r["spec"]), RolloutState(r["state"]), r["current_wave"],
        r["wave_count"], r["reason"], r["created_at"], r["updated_at"],
    )
