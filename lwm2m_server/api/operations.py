"""Device operations: ``GET|PUT|POST|DELETE /api/devices/{ep}/{path}`` and ``POST|DELETE .../observe``.

GET reads, PUT writes (JSON body; ``?partial=true`` for a partial update), POST executes (optional
text arguments), DELETE deletes an object instance. Observe routes are declared before the catch-all
path routes, because ``{path:path}`` would otherwise swallow the ``/observe`` suffix.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel, Field

from lwm2m_server.api import access
from lwm2m_server.api.deps import ServerDep
from lwm2m_server.api.devices import EndpointParam
from lwm2m_server.api.errors import (
    DEVICE_ERROR_RESPONSES,
    ApiError,
    bad_request,
    not_found,
)
from lwm2m_server.api.observations import setup_reobserve, start_observation, stop_observation
from lwm2m_server.api.values import BodyError, body_to_content, content_to_json, value_to_json
from lwm2m_server.protocol.codecs import CONTENT_FORMATS, CodecError, codec_by_name
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath

router = APIRouter(tags=["operations"])

MAX_BODY_BYTES = 64 * 1024
LINK_FORMAT = 40
FORMAT_NAMES = sorted(c.name for n, c in CONTENT_FORMATS.items() if n != LINK_FORMAT)

FormatParam = Annotated[str | None, Query(max_length=32, description=f"Content format: {', '.join(FORMAT_NAMES)} "
                                                                   "or a CoAP Content-Format number")]
TimeoutParam = Annotated[float | None, Query(gt=0, le=600, description="Device timeout in seconds")]
PATH_PATTERN = r"^/?[0-9]{1,5}(/[0-9]{1,5}){0,3}/?$"
# The pattern documents the shape in OpenAPI; parse_path validates it, so a bad path gets an error in words.
PathParam = Annotated[str, Path(max_length=64, json_schema_extra={"pattern": PATH_PATTERN},
                                description="LwM2M path: object[/instance[/resource[/ri]]], e.g. 3/0/1")]


class ResourceInfo(BaseModel):
    name: str
    units: str = ""
    type: str


class ReadResult(BaseModel):
    endpoint: str
    path: str
    content: dict[str, Any] = Field(description='Leaf path -> value; opaque as {"hex": ...}, objlnk as "3:0"')
    value: Any = Field(None, description="The value itself when a single resource (instance) was read")
    object_name: str | None = Field(None, description="The object's name in the server's object model")
    resources: dict[str, ResourceInfo] = Field(
        default_factory=dict, description="Leaf path -> the resource's name, units and type from the object model")


class OperationResult(BaseModel):
    endpoint: str
    path: str
    operation: str


JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'A value for a resource path, or {"/3/0/1": value} / {"1": value} for an instance',
        "content": {"application/json": {"schema": {}}},
    }
}
TEXT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "Execute arguments, e.g. 0='v',1",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def parse_path(text: str) -> LwM2MPath:
    try:
        return LwM2MPath.parse(text if text.startswith("/") else "/" + text)
    except ValueError as exc:
        raise bad_request(str(exc)) from exc


def parse_format(name: str | None) -> int | None:
    """``?format=`` as a Content-Format number (None = let the server negotiate)."""
    if name is None or name == "":
        return None
    if name.isascii() and name.isdigit():
        number = int(name)
        if number in CONTENT_FORMATS and number != LINK_FORMAT:
            return number
        raise bad_request(f"unsupported content format {number}; known: {sorted(set(CONTENT_FORMATS) - {LINK_FORMAT})}")
    try:
        number = int(codec_by_name(name.lower()).content_format)
    except CodecError as exc:
        raise bad_request(str(exc)) from exc
    if number == LINK_FORMAT:
        raise bad_request("link-format is the answer to Discover, not a content format for values")
    return number


def require_device(server: Any, endpoint: str, path: LwM2MPath | None = None) -> None:
    """404 for an unknown device, and for an object neither the server's object model nor the device knows."""
    reg = access.registration(server, endpoint)
    if reg is None:
        raise not_found(f"unknown device {endpoint!r}")
    if path is None:
        return
    model = access.object_model(server)
    if path.object_id in model or reg.has_object(path.object_id):
        return
    known = ", ".join(str(i) for i in sorted(model.objects))
    announced = " ".join(f"/{o}" for o in sorted({p.object_id for p in reg.instances} | set(reg.objects)))
    raise ApiError(404, "unknown_object",
                   f"object {path.object_id} is not in the server's object model (it knows objects {known}) and "
                   f"{endpoint} does not announce it (it has {announced or 'no objects'}). To manage object "
                   f"{path.object_id}, add its OMA DDF XML file (e.g. objects/{path.object_id}.xml, from the OMA "
                   "LwM2M registry) to the server's objects/ directory and restart the server.")  # fmt: skip


def resource_info(content: Content, model: ObjectRegistry) -> dict[str, ResourceInfo]:
    out: dict[str, ResourceInfo] = {}
    for leaf in content:
        res = model.resource(leaf)
        if res is not None:
            out[str(leaf)] = ResourceInfo(name=res.name, units=res.units, type=res.type.value)
    return out


def read_result(endpoint: str, path: LwM2MPath, content: Content, model: ObjectRegistry | None = None) -> ReadResult:
    value = value_to_json(content[path]) if path in content else None
    obj = model.get(path.object_id) if model is not None else None
    return ReadResult(endpoint=endpoint, path=str(path), content=content_to_json(content), value=value,
                      object_name=obj.name if obj is not None else None,
                      resources=resource_info(content, model) if model is not None else {})


def device_codec_error(exc: CodecError) -> ApiError:
    """The device's payload could not be decoded: its fault, so 502."""
    return ApiError(502, "bad_content", f"undecodable device response: {exc}")


def setup(app: FastAPI, server: Any) -> None:
    """Called by ``create_app``: keep API observations alive across device re-registrations."""
    setup_reobserve(app, server)


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"body larger than {MAX_BODY_BYTES} bytes")
    return body


# ---- observe (declared first: see module docstring) ------------------------------------------------
@router.post("/api/devices/{endpoint}/{path:path}/observe", response_model=ReadResult,
             responses=DEVICE_ERROR_RESPONSES,
             summary='Start observing; notifications go to /api/events as "notification" events')
async def observe(server: ServerDep, request: Request, endpoint: EndpointParam, path: PathParam,
                  format: FormatParam = None, timeout: TimeoutParam = None) -> ReadResult:
    lw_path = parse_path(path)
    fmt = parse_format(format)
    require_device(server, endpoint, lw_path)
    try:
        content = await start_observation(request.app, server, endpoint, lw_path, content_format=fmt,
                                          timeout=timeout)
    except CodecError as exc:
        raise device_codec_error(exc) from exc
    return read_result(endpoint, lw_path, content, access.object_model(server))


@router.delete("/api/devices/{endpoint}/{path:path}/observe", response_model=OperationResult,
               responses=DEVICE_ERROR_RESPONSES, summary="Cancel an observation")
async def cancel_observe(server: ServerDep, request: Request, endpoint: EndpointParam,
                         path: PathParam) -> OperationResult:
    lw_path = parse_path(path)
    require_device(server, endpoint)
    await stop_observation(request.app, server, endpoint, lw_path)
    return OperationResult(endpoint=endpoint, path=str(lw_path), operation="cancel-observe")


# ---- read / write / execute / delete -------------------------------------------------------------------
@router.get("/api/devices/{endpoint}/{path:path}", response_model=ReadResult, responses=DEVICE_ERROR_RESPONSES,
            summary="Read an object, instance, resource or resource instance")
async def read(server: ServerDep, endpoint: EndpointParam, path: PathParam, format: FormatParam = None,
               timeout: TimeoutParam = None) -> ReadResult:
    lw_path = parse_path(path)
    fmt = parse_format(format)
    return await read_local(server, endpoint, lw_path, fmt, timeout)


async def read_local(server: Any, endpoint: str, lw_path: LwM2MPath, fmt: int | None,
                     timeout: float | None) -> ReadResult:
    require_device(server, endpoint, lw_path)
    try:
        content = await server.client.read(endpoint, lw_path, content_format=fmt, timeout=timeout)
    except CodecError as exc:
        raise device_codec_error(exc) from exc
    return read_result(endpoint, lw_path, content, access.object_model(server))


@router.put("/api/devices/{endpoint}/{path:path}", response_model=OperationResult,
            responses=DEVICE_ERROR_RESPONSES, openapi_extra=JSON_BODY,
            summary="Write a resource (JSON value) or an instance (JSON object of resource -> value)")
async def write(server: ServerDep, request: Request, endpoint: EndpointParam, path: PathParam,
                format: FormatParam = None, timeout: TimeoutParam = None,
                partial: Annotated[bool, Query(description="Partial update (POST) instead of replace")] = False,
                ) -> OperationResult:
    lw_path = parse_path(path)
    fmt = parse_format(format)
    raw = await _body(request)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"body is not JSON: {exc}") from exc
    try:
        content = body_to_content(lw_path, body, access.object_model(server))
    except BodyError as exc:
        raise bad_request(str(exc)) from exc
    require_device(server, endpoint, lw_path)
    try:
        await server.client.write(endpoint, lw_path, content, partial=partial, content_format=fmt, timeout=timeout)
    except CodecError as exc:  # nothing to decode in a write response: the encoding of *our* body failed
        raise bad_request(f"cannot encode body: {exc}") from exc
    return OperationResult(endpoint=endpoint, path=str(lw_path), operation="write")


@router.post("/api/devices/{endpoint}/{path:path}", response_model=OperationResult,
             responses=DEVICE_ERROR_RESPONSES, openapi_extra=TEXT_BODY,
             summary="Execute a resource, with optional text arguments")
async def execute(server: ServerDep, request: Request, endpoint: EndpointParam, path: PathParam,
                  timeout: TimeoutParam = None) -> OperationResult:
    lw_path = parse_path(path)
    if lw_path.resource_id is None or lw_path.resource_instance is not None:
        raise bad_request(f"execute needs a resource path, got {lw_path}")
    raw = await _body(request)
    try:
        arguments = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request("execute arguments must be UTF-8 text") from exc
    if request.headers.get("content-type", "").startswith("application/json") and arguments.strip():
        try:
            decoded = json.loads(arguments)
        except ValueError as exc:
            raise bad_request(f"body is not JSON: {exc}") from exc
        if not isinstance(decoded, str):
            raise bad_request("JSON execute arguments must be a string")
        arguments = decoded
    if any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in arguments):
        raise bad_request("execute arguments must be printable ASCII (e.g. 0='v',1)")
    require_device(server, endpoint, lw_path)
    await server.client.execute(endpoint, lw_path, arguments, timeout=timeout)
    return OperationResult(endpoint=endpoint, path=str(lw_path), operation="execute")


@router.delete("/api/devices/{endpoint}/{path:path}", response_model=OperationResult,
               responses=DEVICE_ERROR_RESPONSES, summary="Delete an object instance")
async def delete(server: ServerDep, endpoint: EndpointParam, path: PathParam,
                 timeout: TimeoutParam = None) -> OperationResult:
    lw_path = parse_path(path)
    require_device(server, endpoint)
    await server.client.delete(endpoint, lw_path, **({"timeout": timeout} if timeout is not None else {}))
    return OperationResult(endpoint=endpoint, path=str(lw_path), operation="delete")
