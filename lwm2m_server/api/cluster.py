"""``GET /api/cluster``: the nodes sharing this server's store (alive or not, last heartbeat), the devices each
owns (the node a device last registered or updated through) and the leases (e.g. a rollout's leader)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lwm2m_server.api.deps import ServicesDep
from lwm2m_server.api.errors import ApiError

router = APIRouter(tags=["cluster"])


@router.get("/api/cluster", summary="Nodes on this store, their devices and the leases they hold")
async def cluster(services: ServicesDep) -> dict[str, Any]:
    if services.cluster is None:
        raise ApiError(503, "unavailable", "cluster membership is not running on this server")
    return await services.cluster.status()
