"""``GET /api/audit``: the append-only audit log of rollouts (operator actions and state changes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from lwm2m_server.api.deps import ServerDep
from lwm2m_server.api.errors import ApiError

router = APIRouter(tags=["rollouts"])


@router.get("/api/audit", summary="Audit entries, oldest first, by rollout and/or device endpoint")
async def audit(
    server: ServerDep,
    rollout: Annotated[str | None, Query(max_length=64, description="Only this rollout")] = None,
    endpoint: Annotated[str | None, Query(max_length=256, description="Only this device")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    service = getattr(server, "rollouts", None)
    if service is None:
        raise ApiError(503, "unavailable", "the rollout service is not running on this server")
    rows: list[dict[str, Any]] = await service.repo.audit_log(rollout_id=rollout, endpoint=endpoint, limit=limit,
                                                             offset=offset)  # fmt: skip
    return rows
