"""The persisted shape of an OTA job (one row in ``ota_jobs``; persisted by the store's
``ota_jobs`` repository together with its history rows)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from lwm2m_server.ota.job_state import Cause, JobPhase, describe


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
    node_id: str | None = None  # the node running the job (several nodes on one store); None: one node

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
            self.node_id,
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
            node_id=row.get("node_id"),
        )

