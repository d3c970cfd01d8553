"""Models over REST: ``GET|POST /api/models`` (zoo + uploads) and ``POST /api/models/{name}/plan``.

A plan groups the chosen devices by compile class (the rollout deployer's ``class_of``) and compiles once per
class in the compile service's process pool; nothing is deployed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile

from lwm2m_server.api.deps import ServicesDep
from lwm2m_server.api.errors import ERROR_RESPONSES, ApiError, bad_request, not_found
from lwm2m_server.models_catalog import MAX_DATA_BYTES, MAX_MODEL_BYTES, ModelError, UnknownModel
from lwm2m_server.rollouts.classes import class_name
from lwm2m_server.rollouts.filters import FILTER_DOC, FilterError, parse_filter
from lwm2m_server.services import Services

router = APIRouter(tags=["models"])

NameParam = Annotated[str, Path(min_length=1, max_length=200, description="Zoo or uploaded model name")]
MAX_REQUEST = MAX_MODEL_BYTES + MAX_DATA_BYTES + 64 * 1024


def _deployer(services: Services) -> Any:
    deployer = services.deployer
    if deployer is None:
        raise ApiError(503, "unavailable", "the rollout service (compile classes) is not running on this server")
    return deployer


async def _read(upload: UploadFile, limit: int, what: str) -> bytes:
    data = bytearray()
    while chunk := await upload.read(1 << 20):
        data += chunk
        if len(data) > limit:
            raise ApiError(413, "too_large", f"{what} larger than {limit} bytes")
    return bytes(data)


@router.get("/api/models", summary="Zoo models and uploaded models (name, kind, version, data keys)")
async def list_models(services: ServicesDep) -> list[dict[str, Any]]:
    return services.catalog.entries()


@router.get("/api/models/{name}", responses=ERROR_RESPONSES, summary="One model's catalog entry")
async def get_model(name: NameParam, services: ServicesDep) -> dict[str, Any]:
    try:
        return services.catalog.get(name)
    except UnknownModel as exc:
        raise not_found(str(exc)) from None


@router.post("/api/models", status_code=201, responses=ERROR_RESPONSES,
             summary="Upload a model (.keras, zipped SavedModel or .tflite) with optional .npz data "
                     "(rep_x, val_x, val_y, train_x, train_y)")  # fmt: skip
async def upload_model(
    request: Request,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="the model file")],
    data: Annotated[UploadFile | None, File(description="optional .npz of representative/validation data")] = None,
    name: Annotated[str | None, Form(max_length=64, description="catalog name (default: the file's stem)")] = None,
    task: Annotated[str | None, Form(description="classification or autoencoder")] = None,
) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_REQUEST:
        raise ApiError(413, "too_large", f"upload larger than {MAX_REQUEST} bytes")
    filename = file.filename or ""
    model = await _read(file, MAX_MODEL_BYTES, "model file")
    npz = await _read(data, MAX_DATA_BYTES, "data file") if data is not None else None
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    try:
        return await services.catalog.add_async(name or stem, filename, model, npz or None, task or None)
    except ModelError as exc:
        raise bad_request(str(exc)) from None


@router.post("/api/models/{name}/plan", responses=ERROR_RESPONSES,
             summary="Fit reports per compile class for the chosen devices (compiles, does not deploy)")  # fmt: skip
async def plan_model(
    name: NameParam,
    services: ServicesDep,
    ep: Annotated[list[str] | None, Query(description="device endpoint(s)")] = None,
    filter: Annotated[str | None, Query(max_length=2000, description=FILTER_DOC)] = None,
) -> dict[str, Any]:
    if not ep and filter is None:
        raise bad_request("give ?ep=ENDPOINT (repeatable) or ?filter=EXPRESSION")
    try:
        flt = parse_filter(filter or "")
    except FilterError as exc:
        raise bad_request(str(exc)) from None
    deployer = _deployer(services)
    try:
        source = await services.catalog.resolve_async(name)
    except UnknownModel as exc:
        raise not_found(str(exc)) from None
    wanted = set(ep) if ep else None
    classes: dict[str, dict[str, Any]] = {}
    for endpoint in sorted(await deployer.registered_endpoints()):
        if wanted is not None and endpoint not in wanted:
            continue
        attrs = await deployer.device_attributes(endpoint)
        if attrs is None or not flt.matches(attrs):
            continue
        key, target = deployer.class_of(attrs)
        entry = classes.setdefault(key, {"class_key": key, "class_name": "", "target": target, "endpoints": [],
                                         "cpus": set()})  # fmt: skip
        entry["endpoints"].append(endpoint)
        entry["cpus"].add(attrs.get("cpu"))
    for entry in classes.values():
        entry["class_name"] = class_name(entry["target"], entry.pop("cpus"), fallback=entry["class_key"])
    if wanted is not None:
        missing = sorted(wanted - {e for c in classes.values() for e in c["endpoints"]})
        if missing and not classes:
            raise not_found(f"no registered device matches: {', '.join(missing)}")
    from compilers.target import Target

    for entry in classes.values():
        if entry["target"] is None:
            entry.update(fits=False, chosen=None, summary="hardware unknown: no /32001 TinyML Hardware object",
                         report=None)  # fmt: skip
            continue
        try:
            report = await deployer.compile_service.plan(source, Target.from_dict(entry["target"]))
        except (ValueError, RuntimeError) as exc:
            raise ApiError(422, "compile_failed", f"cannot compile {name}: {exc}") from None
        entry.update(fits=report.chosen is not None, chosen=report.chosen, summary=report.summary,
                     report=report.to_json())  # fmt: skip
    return {"model": name, "devices": sum(len(c["endpoints"]) for c in classes.values()),
            "classes": list(classes.values()), "notes": list(flt.notes)}  # fmt: skip
