"""Composite operations (LwM2M 1.1) on several paths of one device at once:

* ``POST /api/devices/{ep}/composite/read`` ``{"paths": [...]}``: Read-Composite (FETCH ``/``);
* ``PUT /api/devices/{ep}/composite`` ``{"/3/0/14": "+02", "/1/0/1": 300}``: Write-Composite (iPATCH ``/``);
* ``POST /api/devices/{ep}/composite/observe`` ``{"paths": [...]}``: Observe-Composite; notifications go to
  ``/api/events`` as ``notification`` events with ``path "/"`` and the observed ``paths``;
* ``DELETE /api/devices/{ep}/composite/observe?path=...&path=...``: cancel it.

Bodies name absolute paths; values are written as in single writes (opaque ``{"hex": ...}``, objlnk ``"3:0"``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from lwm2m_server.api import access
from lwm2m_server.api.deps import ServerDep
from lwm2m_server.api.devices import EndpointParam
from lwm2m_server.api.errors import DEVICE_ERROR_RESPONSES, ApiError, bad_request
from lwm2m_server.api.operations import MAX_BODY_BYTES, TimeoutParam, require_device
from lwm2m_server.api.values import BodyError, body_to_content, content_to_json
from lwm2m_server.protocol.codecs import CodecError
from lwm2m_server.protocol.composite import MAX_PATHS
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath

router = APIRouter(tags=["composite"])

API_OWNER = "api"


class PathList(BaseModel):
    paths: list[str] = Field(min_length=1, max_length=MAX_PATHS, description='e.g. ["/3/0/9", "/1/0"]')


class CompositeResult(BaseModel):
    endpoint: str
    paths: list[str]
    content: dict[str, Any] = Field(description='Leaf path -> value; opaque as {"hex": ...}, objlnk as "3:0"')


class CompositeOperation(BaseModel):
    endpoint: str
    paths: list[str]
    operation: str


def _paths(texts: list[str]) -> list[LwM2MPath]:
    out: list[LwM2MPath] = []
    for text in texts:
        try:
            path = LwM2MPath.parse(text)
        except ValueError as exc:
            raise bad_request(f"bad path {text[:64]!r}: {exc}") from exc
        if path in out:
            raise bad_request(f"path {path} named twice")
        out.append(path)
    return out


def body_to_root_content(body: Any, model: ObjectRegistry) -> Content:
    """``{"/3/0/14": v, "/1/0/1": v, "/3/0/6": {"0": v}}``: absolute resource paths of any objects."""
    if not isinstance(body, dict) or not body:
        raise BodyError('a composite write needs a JSON object like {"/3/0/14": "+02", "/1/0/1": 300}')
    content: Content = {}
    for key, raw in body.items():
        try:
            path = LwM2MPath.parse(str(key))
        except ValueError as exc:
            raise BodyError(f"bad key {str(key)[:64]!r}: {exc}") from exc
        if path.resource_id is None:
            raise BodyError(f"key {key!r} must name a resource or resource instance")
        part = body_to_content(path.truncate("instance"), {str(path): raw}, model)
        if set(part) & set(content):
            raise BodyError(f"key {key!r} names a value twice")
        content |= part
    return content


@router.post("/api/devices/{endpoint}/composite/read", response_model=CompositeResult,
             responses=DEVICE_ERROR_RESPONSES, summary="Read-Composite: several paths in one request")
async def read_composite(server: ServerDep, endpoint: EndpointParam, body: PathList,
                         timeout: TimeoutParam = None) -> CompositeResult:
    paths = _paths(body.paths)
    require_device(server, endpoint)
    content = await server.client.read_composite(endpoint, paths, timeout=timeout)
    return CompositeResult(endpoint=endpoint, paths=[str(p) for p in paths], content=content_to_json(content))


@router.put("/api/devices/{endpoint}/composite", response_model=CompositeOperation,
            responses=DEVICE_ERROR_RESPONSES, summary="Write-Composite: values of several objects in one request")
async def write_composite(server: ServerDep, request: Request, endpoint: EndpointParam,
                          timeout: TimeoutParam = None) -> CompositeOperation:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"body is not JSON: {exc}") from exc
    try:
        content = body_to_root_content(body, access.object_model(server))
    except BodyError as exc:
        raise bad_request(str(exc)) from exc
    require_device(server, endpoint)
    try:
        await server.client.write_composite(endpoint, content, timeout=timeout)
    except CodecError as exc:
        raise bad_request(f"cannot encode body: {exc}") from exc
    return CompositeOperation(endpoint=endpoint, paths=[str(p) for p in sorted(content)], operation="write-composite")


@router.post("/api/devices/{endpoint}/composite/observe", response_model=CompositeResult,
             responses=DEVICE_ERROR_RESPONSES,
             summary='Observe-Composite; notifications go to /api/events as "notification" events with path "/"')
async def observe_composite(server: ServerDep, endpoint: EndpointParam, body: PathList,
                            timeout: TimeoutParam = None) -> CompositeResult:
    paths = _paths(body.paths)
    require_device(server, endpoint)
    await server.client.cancel_observe_composite(endpoint, paths, owner=API_OWNER)  # one per path set
    obs = await server.client.observe_composite(endpoint, paths, timeout=timeout, owner=API_OWNER)
    return CompositeResult(endpoint=endpoint, paths=[str(p) for p in paths], content=content_to_json(obs.value))


@router.delete("/api/devices/{endpoint}/composite/observe", response_model=CompositeOperation,
               responses=DEVICE_ERROR_RESPONSES, summary="Cancel an Observe-Composite (the same set of paths)")
async def cancel_observe_composite(
    server: ServerDep,
    endpoint: EndpointParam,
    path: Annotated[list[str], Query(min_length=1, max_length=MAX_PATHS, description="Each observed path")],
) -> CompositeOperation:
    paths = _paths(path)
    require_device(server, endpoint)
    cancelled = await server.client.cancel_observe_composite(endpoint, paths, owner=API_OWNER)
    if not cancelled:
        raise ApiError(404, "not_found", "no composite observation of exactly these paths")
    return CompositeOperation(endpoint=endpoint, paths=[str(p) for p in paths], operation="cancel-observe-composite")
