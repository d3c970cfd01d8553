"""The persisted shape of an OTA job (one row in ``ota_jobs``) and its history rows (``ota_job_history``)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from lwm2m_server.ota.job_state import Cause, JobPhase, describe

SCHEMA = """
CREATE TABLE IF NOT EXISTS ota_jobs (
    id TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    package_sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    requested_method TEXT,
    method TEXT,
    phase TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    cause TEXT,
    result INTEGER,
    detail TEXT NOT NULL DEFAULT '',
    progress TEXT NOT NULL DEFAULT '{}',
    options TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ota_jobs_endpoint ON ota_jobs (endpoint, created_at);
CREATE INDEX IF NOT EXISTS ota_jobs_phase ON ota_jobs (phase);
CREATE TABLE IF NOT EXISTS ota_job_history (
    job_id TEXT NOT NULL,
    ts REAL NOT NULL,
    from_phase TEXT NOT NULL,
    to_phase TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ota_job_history_job ON ota_job_history (job_id, ts);
"""


@dataclass
class JobRecord:
    endpoint: str
    package_sha256: str
    kind: str  # "model" | "firmware"
    requested_method: str | None = None
    method: str | None = None
    phase: JobPhase = JobPhase.QUEUED
    attempt: int = 1
    cause: Cause | None = None
    result: int | None = None
    detail: str = ""
    progress: dict[str, Any] = field(default_factory=dict)  # blocks, bytes, total, fw_state, fw_result
    options: dict[str, Any] = field(default_factory=dict)  # per-job overrides: timeout_s, max_retries
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def summary(self) -> str:
        return describe(self.cause, self.result)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["phase"] = self.phase.value
        d["cause"] = self.cause.value if self.cause else None
        d["summary"] = self.summary
        return d

    def to_row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.endpoint,
            self.package_sha256,
            self.kind,
            self.requested_method,
            self.method,
            self.phase.value,
            self.attempt,
            self.cause.value if self.cause else None,
            self.result,
            self.detail,
            json.dumps(self.progress),
            json.dumps(self.options),
            self.created_at,
            self.updated_at,
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobRecord:
        return cls(
            id=row["id"],
            endpoint=row["endpoint"],
            package_sha256=row["package_sha256"],
            kind=row["kind"],
            requested_method=row["requested_method"],
            method=row["method"],
            phase=JobPhase(row["phase"]),
            attempt=int(row["attempt"]),
            cause=Cause(row["cause"]) if row["cause"] else None,
            result=row["result"],
            detail=row["detail"] or "",
            progress=json.loads(row["progress"] or "{}"),
            options=json.loads(row["options"] or "{}"),
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )


UPSERT = (
    "INSERT INTO ota_jobs (id, endpoint, package_sha256, kind, requested_method, method, phase, attempt, cause,"
    " result, detail, progress, options, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(id) DO UPDATE SET method=excluded.method, phase=excluded.phase, attempt=excluded.attempt,"
    " cause=excluded.cause, result=excluded.result, detail=excluded.detail, progress=excluded.progress,"
    " updated_at=excluded.updated_at"
)
HISTORY = "INSERT INTO ota_job_history (job_id, ts, from_phase, to_phase, attempt, note) VALUES (?,?,?,?,?,?)"
