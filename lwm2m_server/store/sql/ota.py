"""``ota_jobs`` + ``ota_job_history`` (one job per row, its transitions), ``ota_packages`` (metadata rows) and
``ota_package_blobs`` (their bytes, shared by every node)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from lwm2m_server.ota.package_info import PackageInfo
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.store.sql.engine import Params, Sql

# The update applies only while the writer still owns the job: a node that lost it to an adopting node
# (see adopt) cannot overwrite the new owner's state.
UPSERT_JOB = (
    "INSERT INTO ota_jobs (id, endpoint, package_sha256, kind, requested_method, method, phase, attempt, cause,"
    " result, detail, progress, options, created_at, updated_at, node_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(id) DO UPDATE SET method=excluded.method, phase=excluded.phase, attempt=excluded.attempt,"
    " cause=excluded.cause, result=excluded.result, detail=excluded.detail, progress=excluded.progress,"
    " updated_at=excluded.updated_at WHERE ota_jobs.node_id = excluded.node_id"
    " OR (ota_jobs.node_id IS NULL AND excluded.node_id IS NULL)"
)
INSERT_BLOB = "INSERT INTO ota_package_blobs (sha256, data) VALUES (?, ?) ON CONFLICT(sha256) DO NOTHING"
# Like the job row, a history row is written only by the job's owner (the casts type the parameters for
# PostgreSQL, which cannot infer them in a SELECT list).
INSERT_HISTORY = (
    "INSERT INTO ota_job_history (job_id, ts, from_phase, to_phase, attempt, note)"
    " SELECT CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER),"
    " CAST(? AS TEXT) WHERE EXISTS (SELECT 1 FROM ota_jobs WHERE id = ? AND (node_id = CAST(? AS TEXT)"
    " OR (node_id IS NULL AND CAST(? AS TEXT) IS NULL)))"
)


class SqlOtaJobRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def save(self, record: JobRecord, history: tuple[str, str, str] | None = None) -> None:
        # The job row and its history row are queued together: one commit per transition, shared by every job
        # (and other write) of the same batch window; still committed before save returns.
        statements: list[tuple[str, Params]] = [(UPSERT_JOB, record.to_row())]
        if history is not None:
            before, after, note = history
            statements.append((INSERT_HISTORY, (record.id, time.time(), before, after, record.attempt, note,
                                                record.id, record.node_id, record.node_id)))
        await self._sql.execute_together(statements)

    async def get(self, job_id: str) -> JobRecord | None:
        rows = await self._sql.fetchall("SELECT * FROM ota_jobs WHERE id = ?", (job_id,))
        return JobRecord.from_row(rows[0]) if rows else None

    async def in_phases(self, phases: Iterable[str]) -> list[JobRecord]:
        wanted = list(phases)
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = await self._sql.fetchall(
            f"SELECT * FROM ota_jobs WHERE phase IN ({marks}) ORDER BY created_at", wanted
        )
        return [JobRecord.from_row(r) for r in rows]

    async def for_endpoint(self, endpoint: str, limit: int = 20) -> list[JobRecord]:
        rows = await self._sql.fetchall(
            "SELECT * FROM ota_jobs WHERE endpoint = ? ORDER BY created_at DESC LIMIT ?", (endpoint, limit)
        )
        return [JobRecord.from_row(r) for r in rows]

    async def history(self, job_id: str) -> list[dict[str, Any]]:
        return await self._sql.fetchall(
            "SELECT ts, from_phase, to_phase, attempt, note FROM ota_job_history WHERE job_id = ? ORDER BY id",
            (job_id,),
        )

    async def adopt(self, job_id: str, from_node: str | None, to_node: str) -> bool:
        # One conditional UPDATE: of nodes racing to adopt the same job, exactly one matches the old owner.
        if from_node is None:
            await self._sql.execute("UPDATE ota_jobs SET node_id = ? WHERE id = ? AND node_id IS NULL",
                                    (to_node, job_id))
        else:
            await self._sql.execute("UPDATE ota_jobs SET node_id = ? WHERE id = ? AND node_id = ?",
                                    (to_node, job_id, from_node))
        rows = await self._sql.fetchall("SELECT node_id FROM ota_jobs WHERE id = ?", (job_id,))
        return bool(rows) and rows[0]["node_id"] == to_node

    async def count_retried(self) -> int:
        rows = await self._sql.fetchall("SELECT COUNT(*) AS n FROM ota_jobs WHERE attempt > 1")
        return int(rows[0]["n"]) if rows else 0


class SqlPackageRepository:
    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def add(self, info: PackageInfo, data: bytes | None = None) -> None:
        statements: list[tuple[str, Params]] = [(
            "INSERT INTO ota_packages (sha256, kind, size, name, version, payload_sha256, variant, arena_bytes,"
            " created_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(sha256) DO NOTHING",
            (info.sha256, info.kind, info.size, info.name, info.version, info.payload_sha256, info.variant,
             info.arena_bytes, info.created_at),
        )]
        if data is not None:
            statements.append((INSERT_BLOB, (info.sha256, data)))
        await self._sql.execute_together(statements)

    async def put_data(self, sha256: str, data: bytes) -> None:
        await self._sql.execute(INSERT_BLOB, (sha256, data))

    async def data(self, sha256: str) -> bytes | None:
        rows = await self._sql.fetchall("SELECT data FROM ota_package_blobs WHERE sha256 = ?", (sha256,))
        return bytes(rows[0]["data"]) if rows else None

    async def without_data(self) -> list[str]:
        rows = await self._sql.fetchall(
            "SELECT sha256 FROM ota_packages WHERE sha256 NOT IN (SELECT sha256 FROM ota_package_blobs)"
            " ORDER BY created_at")
        return [str(r["sha256"]) for r in rows]

    async def get(self, sha256: str) -> PackageInfo | None:
        rows = await self._sql.fetchall("SELECT * FROM ota_packages WHERE sha256 = ?", (sha256,))
        return _info(rows[0]) if rows else None

    async def all(self) -> list[PackageInfo]:
        return [_info(r) for r in await self._sql.fetchall("SELECT * FROM ota_packages ORDER BY created_at")]


def _info(row: dict[str, Any]) -> PackageInfo:
    return PackageInfo(**{k: row[k] for k in PackageInfo.__dataclass_fields__})
