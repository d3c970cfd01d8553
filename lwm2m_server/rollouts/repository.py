"""Rollout persistence as the engine sees it: the store's rollout tables plus the shared audit log.

Everything a running rollout knows is in the store, so a restarted server resumes where it was. Writes go
through the store's batched writer; the engine calls :meth:`flush` at the transitions that must not be lost
(a device handed to OTA, a wave advancing). No SQL here: see :class:`~lwm2m_server.store.repositories.RolloutTables`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from lwm2m_server.rollouts.model import Build, Incompatible, RolloutSpec
from lwm2m_server.rollouts.records import DeviceRow, RolloutRow
from lwm2m_server.rollouts.states import DeviceState, RolloutState
from lwm2m_server.store.audit import AuditLog
from lwm2m_server.store.repositories import RolloutTables

__all__ = ["DeviceRow", "RolloutRepository", "RolloutRow"]


class RolloutRepository:
    def __init__(self, tables: RolloutTables, audit_log: AuditLog, flush: Callable[[], Awaitable[None]], *,
                 cache_running: bool = False) -> None:  # fmt: skip
        """``flush``: the store's, waits until every queued write is committed. ``cache_running``: this
        repository is the only writer of the rollouts (one node, nothing else changes them), so :meth:`running`
        may keep its answer until one of them is created or changes state or wave here."""
        self.tables = tables
        self.audit_store = audit_log
        self._flush = flush
        self._cache_running = cache_running
        self._running: list[RolloutRow] | None = None
        self._generation = 0  # bumped by every rollout write: a read that overlapped one is not cached

    def _changed(self) -> None:
        self._generation += 1
        self._running = None

    async def open(self) -> None:
        """Nothing to prepare: the store's migrations made the tables."""

    async def flush(self) -> None:
        await self._flush()

    # --- rollouts ----------------------------------------------------------------------------------------
    async def create(self, spec: RolloutSpec) -> RolloutRow:
        self._changed()
        try:
            return await self.tables.create(spec)
        finally:
            self._changed()

    async def set_state(self, rollout_id: str, state: RolloutState, reason: str | None = None) -> None:
        self._changed()
        try:
            await self.tables.set_state(rollout_id, state, reason)
        finally:
            self._changed()

    async def set_wave(self, rollout_id: str, current: int, count: int | None = None) -> None:
        self._changed()
        try:
            await self.tables.set_wave(rollout_id, current, count)
        finally:
            self._changed()

    async def get(self, rollout_id: str) -> RolloutRow | None:
        return await self.tables.get(rollout_id)

    async def list_rollouts(self, state: RolloutState | None = None) -> list[RolloutRow]:
        return await self.tables.list_rollouts(state)

    async def running(self) -> list[RolloutRow]:
        """The running rollouts (what every registration's dynamic-membership check asks: in a storm, one SELECT
        per Register). Cached with ``cache_running``; otherwise read each time (other nodes change them)."""
        if self._running is not None:
            return list(self._running)
        generation = self._generation
        rows = await self.tables.list_rollouts(RolloutState.RUNNING)
        if self._cache_running and generation == self._generation:
            self._running = rows
        return list(rows)

    # --- devices -----------------------------------------------------------------------------------------
    async def add_devices(self, rollout_id: str, waves: Iterable[tuple[int, str, str | None]]) -> None:
        await self.tables.add_devices(rollout_id, waves)

    async def set_device(
        self, rollout_id: str, endpoint: str, state: DeviceState, *, cause: str | None = None,
        job_id: str | None = None, attempt: bool = False,
    ) -> None:
        await self.tables.set_device(rollout_id, endpoint, state, cause=cause, job_id=job_id, attempt=attempt)

    async def devices(self, rollout_id: str, *, wave: int | None = None, state: DeviceState | None = None,
                      limit: int = -1, offset: int = 0) -> list[DeviceRow]:
        return await self.tables.devices(rollout_id, wave=wave, state=state, limit=limit, offset=offset)

    async def counts(self, rollout_id: str) -> list[dict[str, Any]]:
        return await self.tables.counts(rollout_id)

    async def class_members(self, rollout_id: str) -> dict[str, str]:
        """class_key -> one endpoint of the class (the first by name), to describe the class by its hardware."""
        return await self.tables.class_members(rollout_id)

    # --- compile classes ---------------------------------------------------------------------------------
    async def save_class(self, rollout_id: str, target: dict[str, Any] | None, result: Build | Incompatible) -> None:
        await self.tables.save_class(rollout_id, target, result)

    async def classes(self, rollout_id: str) -> list[dict[str, Any]]:
        return await self.tables.classes(rollout_id)

    # --- audit (the shared log, see lwm2m_server.store.audit) --------------------------------------------
    async def audit(self, action: str, *, rollout_id: str | None = None, endpoint: str | None = None,
                    actor: str = "system", detail: dict[str, Any] | None = None) -> None:
        await self.audit_store.record(action, rollout_id=rollout_id, endpoint=endpoint, actor=actor, detail=detail)

    async def audit_log(self, *, rollout_id: str | None = None, endpoint: str | None = None,
                        limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        return await self.audit_store.entries(rollout_id=rollout_id, endpoint=endpoint, limit=limit, offset=offset)
