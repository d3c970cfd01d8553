"""Discover and Write-Attributes: ``GET .../{path}/discover`` and ``PUT .../{path}/attributes``.

Declared before the catch-all device-operation routes (see ``app.ROUTERS``), which would otherwise
read ``/discover`` and ``/attributes`` as part of the LwM2M path.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from lwm2m_server.api import access
from lwm2m_server.api.deps import ServerDep
from lwm2m_server.api.devices import EndpointParam
from lwm2m_server.api.errors import DEVICE_ERROR_RESPONSES, bad_request
from lwm2m_server.api.operations import (
    MAX_BODY_BYTES,
    OperationResult,
    PathParam,
    TimeoutParam,
    parse_path,
    require_device,
)
from lwm2m_server.protocol.attributes import ATTRIBUTE_NAMES, WriteAttributes, WriteAttributesError

router = APIRouter(tags=["operations"])


class LinkOut(BaseModel):
    target: str
    params: dict[str, str | None]


class DiscoverResult(BaseModel):
    endpoint: str
    path: str
    links: list[LinkOut] = Field(description="The device's link-format answer, one entry per link")


ATTRIBUTES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'Notification attributes to set, e.g. {"pmin": 5, "pmax": 60, "gt": 20.5}; null clears one',
        "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {name: {"type": ["number", "null"]} for name in ATTRIBUTE_NAMES},
            "additionalProperties": False,
        }}},
    }
}


def parse_attributes(raw: bytes) -> WriteAttributes:
    if len(raw) > MAX_BODY_BYTES:
        raise bad_request("body too large")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or not body:
        raise bad_request(f"send a JSON object of attributes ({', '.join(ATTRIBUTE_NAMES)})")
    unknown = sorted(str(k) for k in body if k not in ATTRIBUTE_NAMES)
    if unknown:
        raise bad_request(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(ATTRIBUTE_NAMES)}")
    values = {k: v for k, v in body.items() if v is not None}
    try:
        return WriteAttributes(**values, clear=frozenset(k for k, v in body.items() if v is None))
    except (WriteAttributesError, TypeError) as exc:
        raise bad_request(str(exc)) from exc


@router.get("/api/devices/{endpoint}/{path:path}/discover", response_model=DiscoverResult,
            responses=DEVICE_ERROR_RESPONSES, summary="Discover the resources (and attributes) below a path")
async def discover(server: ServerDep, endpoint: EndpointParam, path: PathParam,
                   timeout: TimeoutParam = None) -> DiscoverResult:
    lw_path = parse_path(path)
    require_device(server, endpoint)
    links = await server.client.discover(endpoint, lw_path, timeout=timeout)
    return DiscoverResult(endpoint=endpoint, path=str(lw_path),
                          links=[LinkOut(target=link.target, params=dict(link.params)) for link in links])


@router.put("/api/devices/{endpoint}/{path:path}/attributes", response_model=OperationResult,
            responses=DEVICE_ERROR_RESPONSES, openapi_extra=ATTRIBUTES_BODY,
            summary="Write-Attributes: notification attributes (pmin, pmax, gt, lt, st, epmin, epmax)")
async def write_attributes(server: ServerDep, request: Request, endpoint: EndpointParam, path: PathParam,
                           timeout: TimeoutParam = None) -> OperationResult:
    lw_path = parse_path(path)
    attrs = parse_attributes(await request.body())
    try:
        attrs.validate_for(lw_path, access.object_model(server).resource(lw_path))
    except WriteAttributesError as exc:
        raise bad_request(str(exc)) from exc
    require_device(server, endpoint)
    mapping: dict[str, float | int | None] = {**attrs.as_dict(), **{name: None for name in attrs.clear}}
    await server.client.write_attributes(endpoint, lw_path, mapping, timeout=timeout)
    return OperationResult(endpoint=endpoint, path=str(lw_path), operation="write-attributes")
