"""The fleet counts behind the Prometheus series (OTA jobs by phase, rollouts and their devices by state)."""

from __future__ import annotations

from lwm2m_server.store.sql.engine import Sql


class SqlFleetStats:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def ota_phases(self) -> list[tuple[str, int]]:
        rows = await self._sql.fetchall("SELECT phase, COUNT(*) AS n FROM ota_jobs GROUP BY phase")
        return [(r["phase"], int(r["n"])) for r in rows]

    async def rollout_states(self) -> list[tuple[str, int]]:
        rows = await self._sql.fetchall("SELECT state, COUNT(*) AS n FROM rollouts GROUP BY state")
        return [(r["state"], int(r["n"])) for r in rows]

    async def rollout_devices(self) -> list[tuple[str, str, int]]:
        rows = await self._sql.fetchall(
            "SELECT rollout_id, state, COUNT(*) AS n FROM rollout_devices GROUP BY rollout_id, state")
        return [(r["rollout_id"], r["state"], int(r["n"])) for r in rows]
