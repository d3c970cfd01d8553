"""``GET /healthz``: liveness plus a few cheap numbers (for load balancers and ``tinymlaas`` clients)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from lwm2m_server import __version__
from lwm2m_server.api.access import registered_count
from lwm2m_server.api.deps import ServerDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    devices: int
    coap_port: int | None


@router.get("/healthz", response_model=Health, summary="Liveness check")
async def healthz(server: ServerDep) -> Health:
    return Health(status="ok", version=__version__, devices=registered_count(server),
                  coap_port=server.coap_port)
