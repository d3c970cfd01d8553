"""OTA over REST: ``POST|GET|DELETE /api/devices/{ep}/update`` and ``GET|POST /api/packages``.

The OTA service comes with the app's :class:`~lwm2m_server.services.Services` (``create_app(server, services=...)``
or ``ota=...``); without it these routes answer 503.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field, field_validator, model_validator

from lwm2m_server.api.deps import ServicesDep
from lwm2m_server.api.errors import ERROR_RESPONSES, ApiError, bad_request
from lwm2m_server.ota.packages import PackageError
from lwm2m_server.ota.service import OtaError, OtaService
from lwm2m_server.services import Services

router = APIRouter(tags=["ota"])

EndpointParam = Annotated[str, Path(min_length=1, max_length=256, description="Device endpoint name")]
MAX_UPLOAD = 16 * 1024 * 1024
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class UpdateRequest(BaseModel):
    """Exactly one of ``package`` (a stored model package sha), ``model`` (a zoo model compiled for this
    device's class) or ``firmware`` (a stored plain firmware image sha)."""

    package: str | None = Field(None, json_schema_extra={"pattern": SHA256_PATTERN})
    model: str | None = Field(None, min_length=1, max_length=200)
    firmware: str | None = Field(None, json_schema_extra={"pattern": SHA256_PATTERN})
    method: Literal["push", "pull"] | None = None

    @field_validator("package", "firmware")
    @classmethod
    def _sha256(cls, v: str | None) -> str | None:
        """Said in words (the pattern stays in the OpenAPI schema)."""
        if v is not None and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v)):
            raise ValueError(f"must be a sha256: 64 lowercase hex digits, got {len(v)} characters "
                             f"{v[:16]!r}{'...' if len(v) > 16 else ''}")  # fmt: skip
        return v

    @model_validator(mode="after")
    def _exactly_one(self) -> UpdateRequest:
        if sum(x is not None for x in (self.package, self.model, self.firmware)) != 1:
            raise ValueError("give exactly one of package, model or firmware")
        return self


class UpdateStarted(BaseModel):
    job: str
    endpoint: str
    package: str


class PackageOut(BaseModel):
    sha256: str
    kind: str
    size: int
    name: str
    version: str
    payload_sha256: str
    variant: str
    arena_bytes: int
    created_at: float


def _ota(services: Services) -> OtaService:
    if services.ota is None:
        raise ApiError(503, "unavailable", "the OTA service is not running on this server")
    return services.ota


def _err(exc: OtaError) -> ApiError:
    codes = {404: "not_found", 409: "conflict", 503: "unavailable"}
    return ApiError(exc.status, codes.get(exc.status, "bad_request"), str(exc))


@router.post("/api/devices/{ep}/update", status_code=202, response_model=UpdateStarted, responses=ERROR_RESPONSES,
             summary="Start an OTA update (package, model or firmware) on one device")  # fmt: skip
async def start_update(ep: EndpointParam, body: UpdateRequest, services: ServicesDep) -> UpdateStarted:
    ota = _ota(services)
    try:
        if body.model is not None:
            info = await ota.build_model_package(ep, body.model)
            sha = info.sha256
        else:
            sha = body.package or body.firmware or ""
            info_or_none = await ota.packages.get(sha)
            want = "model" if body.package else "firmware"
            if info_or_none is not None and info_or_none.kind != want:
                raise bad_request(f"{sha} is a {info_or_none.kind} package, not a {want}")
        job = await ota.start_update(ep, sha, method=body.method)
    except OtaError as exc:
        raise _err(exc) from exc
    return UpdateStarted(job=job, endpoint=ep, package=sha)


@router.get("/api/devices/{ep}/update", responses=ERROR_RESPONSES,
            summary="The device's latest OTA job (phase, progress, cause) with its history")  # fmt: skip
async def update_status(ep: EndpointParam, services: ServicesDep) -> dict[str, Any]:
    status = await _ota(services).status(ep)
    if status["job"] is None and services.server.registry.get(ep) is None:
        raise ApiError(404, "not_found", f"no device or update for {ep!r}")
    return status


@router.delete("/api/devices/{ep}/update", responses=ERROR_RESPONSES, summary="Cancel the device's running update")
async def cancel_update(ep: EndpointParam, services: ServicesDep) -> dict[str, Any]:
    ota = _ota(services)
    jobs = await ota.jobs_for(ep, limit=1)
    if not jobs or not await ota.cancel(jobs[0].id):
        raise ApiError(404, "not_found", f"no running update on {ep!r}")
    record = await ota.get_job(jobs[0].id)
    return record.to_json() if record else {}


@router.get("/api/packages", response_model=list[PackageOut], summary="Stored packages and firmware images")
async def list_packages(services: ServicesDep) -> list[PackageOut]:
    return [PackageOut(**p.to_json()) for p in await _ota(services).packages.list()]


@router.post("/api/packages", status_code=201, response_model=PackageOut, responses=ERROR_RESPONSES,
             summary="Upload a signed model package or a plain firmware image (raw body); returns its sha256",
             openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {
                 "type": "string", "format": "binary"}}}, "required": True}})  # fmt: skip
async def upload_package(
    request: Request,
    services: ServicesDep,
    kind: Annotated[Literal["model", "firmware"], Query(description="model package or firmware image")] = "model",
    name: Annotated[str, Query(max_length=200)] = "",
    version: Annotated[str, Query(max_length=100)] = "",
) -> PackageOut:
    ota = _ota(services)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_UPLOAD:
            raise ApiError(413, "too_large", f"package larger than {MAX_UPLOAD} bytes")
    try:
        info = await ota.add_package(bytes(data), kind, name=name, version=version)
    except PackageError as exc:
        raise bad_request(str(exc)) from exc
    return PackageOut(**info.to_json())
