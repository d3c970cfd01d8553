"""``GET /api/audit``: the append-only audit log (rollout actions and state changes, token changes, refused
requests), filtered by rollout, device or action prefix (e.g. ``auth.``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from lwm2m_server.store.audit import AuditLog

router = APIRouter(tags=["audit"])


@router.get("/api/audit", summary="Audit entries, oldest first, by rollout, device endpoint and/or action prefix")
async def audit(
    request: Request,
    rollout: Annotated[str | None, Query(max_length=64, description="Only this rollout")] = None,
    endpoint: Annotated[str | None, Query(max_length=256, description="Only this device")] = None,
    action: Annotated[str | None, Query(max_length=64, description='Only actions starting with this, e.g. "auth."')]
    = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    log: AuditLog = request.app.state.audit_log  # the app's shared log, handed to create_app
    return await log.entries(rollout_id=rollout, endpoint=endpoint, action_prefix=action, limit=limit, offset=offset)
