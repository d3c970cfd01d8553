"""``/api/bootstrap``: per-endpoint bootstrap configs (admin). A device whose endpoint has a config gets it
provisioned over ``/bs``; see :mod:`lwm2m_server.protocol.bootstrap` for the fields' rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from lwm2m_server.api.deps import get_actor
from lwm2m_server.api.errors import ERROR_RESPONSES, ApiError, not_found
from lwm2m_server.bootstrap_configs import BootstrapConfigs, view
from lwm2m_server.protocol.bootstrap import BootstrapError

router = APIRouter(tags=["bootstrap"])
Endpoint = Annotated[str, Path(max_length=255, description="The device's endpoint name")]


class BootstrapConfigIn(BaseModel):
    endpoint: str = Field(min_length=1, max_length=255)
    server_uri: str = Field(max_length=255, description="coaps://host:port for psk, coap://host:port for nosec")
    security_mode: Literal["psk", "nosec"] = "psk"
    lifetime: int = Field(default=300, description="Registration lifetime, s (/1/0/1)")
    binding: str = Field(default="U", max_length=3)
    ssid: int = Field(default=1, description="Short Server ID (/0/x/10, /1/x/0)")
    delete_first: bool = Field(default=True, description="Bootstrap-Delete /0 and /1 before writing")


class BootstrapConfigView(BootstrapConfigIn):
    created_at: float


def _service(request: Request) -> BootstrapConfigs:
    service: BootstrapConfigs = request.app.state.server.bootstrap_configs
    return service


@router.get("/api/bootstrap", response_model=list[BootstrapConfigView], responses=ERROR_RESPONSES,
            summary="Every bootstrap config")
async def list_configs(request: Request) -> list[dict[str, Any]]:
    return [view(r) for r in await _service(request).rows()]


@router.put("/api/bootstrap", response_model=BootstrapConfigView, responses=ERROR_RESPONSES,
            summary="Add or replace an endpoint's bootstrap config")
async def put_config(request: Request, body: BootstrapConfigIn) -> dict[str, Any]:
    try:
        row = await _service(request).put(body.model_dump(), actor=get_actor(request))
    except BootstrapError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return view(row)


@router.get("/api/bootstrap/{endpoint}", response_model=BootstrapConfigView, responses=ERROR_RESPONSES,
            summary="One endpoint's bootstrap config")
async def get_config(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    row = await _service(request).row(endpoint)
    if row is None:
        raise not_found(f"no bootstrap config for {endpoint!r}")
    return view(row)


@router.delete("/api/bootstrap/{endpoint}", response_model=BootstrapConfigView, responses=ERROR_RESPONSES,
               summary="Remove an endpoint's bootstrap config (its next Bootstrap-Request gets 4.00)")
async def remove_config(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    service = _service(request)
    row = await service.row(endpoint)
    if row is None or not await service.remove(endpoint, actor=get_actor(request)):
        raise not_found(f"no bootstrap config for {endpoint!r}")
    return view(row)
