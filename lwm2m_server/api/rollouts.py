"""Rollouts over REST: ``GET|POST /api/rollouts``, ``GET /api/rollouts/{id}``, ``POST /api/rollouts/{id}/{action}``.

The body of a create is a :class:`~lwm2m_server.rollouts.model.RolloutSpec` plus an optional ``"start": true``.
Invalid transitions answer 409, unknown rollouts 404, invalid specs 400 -- all in the one error shape.
Progress goes to the event bus as ``rollout.progress`` (so ``/api/events`` and MQTT carry it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import ValidationError

from lwm2m_server.api.deps import ActorDep, ServicesDep
from lwm2m_server.api.errors import ERROR_RESPONSES, ApiError, ErrorBody, bad_request, not_found
from lwm2m_server.models_catalog import UnknownModel
from lwm2m_server.rollouts.filters import FILTER_DOC, parse_filter
from lwm2m_server.rollouts.model import RolloutSpec
from lwm2m_server.rollouts.prebuilt import package_sha
from lwm2m_server.rollouts.service import EmptyTarget, InvalidAction, RolloutNotFound, RolloutService
from lwm2m_server.services import Services

router = APIRouter(tags=["rollouts"])

IdParam = Annotated[str, Path(min_length=1, max_length=64, description="Rollout id")]
Action = Literal["start", "pause", "resume", "cancel", "retry"]
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 409: {"model": ErrorBody, "description": "The action is not valid in the rollout's state"},
}  # fmt: skip


def _service(services: Services) -> RolloutService:
    if services.rollouts is None:
        raise ApiError(503, "unavailable", "the rollout service is not running on this server")
    return services.rollouts


def _spec(body: dict[str, Any]) -> tuple[RolloutSpec, bool]:
    fields = dict(body)
    start = fields.pop("start", False)
    if not isinstance(start, bool):
        raise bad_request("start: must be a boolean")
    try:
        spec = RolloutSpec.model_validate(fields)
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg'].removeprefix('Value error, ')}"
                 for e in exc.errors()[:5]]
        raise bad_request("; ".join(parts)) from None
    return spec, start


@router.get("/api/rollouts", summary="Every rollout (state, wave, spec), oldest first")
async def list_rollouts(services: ServicesDep) -> list[dict[str, Any]]:
    return await _service(services).list_rollouts()


CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, 409: {"model": ErrorBody, "description": "No device matches the target (and allow_empty is "
                                                                "not set); the message says why"},
}  # fmt: skip


@router.post("/api/rollouts", status_code=201, responses=CREATE_RESPONSES,
             summary="Create a rollout (RolloutSpec fields, plus \"start\": true to start it at once)",
             description="`filter` selects the devices. " + FILTER_DOC)  # fmt: skip
async def create_rollout(
    services: ServicesDep,
    actor: ActorDep,
    body: Annotated[dict[str, Any], Body(openapi_examples={"digits": {"value": {
        "model": "digits-cnn", "filter": 'accelerator == "none"', "waves": "10%,50%,100%", "start": True}}})],
) -> dict[str, Any]:
    spec, start = _spec(body)
    model = spec.model
    sha = package_sha(model)
    if sha is not None:
        info = await services.ota.packages.get(sha) if services.ota is not None else None
        if info is None or info.kind != "model":
            raise bad_request(f"model: no model package {sha!r} (upload it: POST /api/packages?kind=model)")
    else:
        try:
            await services.catalog.resolve_async(model)
        except UnknownModel as exc:
            raise bad_request(f"model: {exc}") from None
    service = _service(services)
    try:
        rollout = await service.create(spec, start=start, actor=actor)
    except EmptyTarget as exc:
        raise ApiError(409, "empty_target", str(exc)) from None
    # Sizes written with a datasheet unit (64KB, 64k) are echoed as the bytes they were read as.
    return {**await service.get(rollout.id, limit=0), "notes": list(parse_filter(spec.filter).notes)}


@router.get("/api/rollouts/{rollout_id}", responses=ERROR_RESPONSES,
            summary="Counts by state, by wave and by compile class, and a page of devices")  # fmt: skip
async def get_rollout(
    rollout_id: IdParam,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    try:
        return await _service(services).get(rollout_id, limit=limit, offset=offset)
    except RolloutNotFound:
        raise not_found(f"no rollout {rollout_id!r}") from None


@router.post("/api/rollouts/{rollout_id}/{action}", responses=ACTION_RESPONSES,
             summary="Operator action: start, pause, resume, cancel or retry (failed devices)")  # fmt: skip
async def rollout_action(rollout_id: IdParam, action: Action, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    service = _service(services)
    try:
        rollout = await service.action(rollout_id, action, actor=actor)
    except RolloutNotFound:
        raise not_found(f"no rollout {rollout_id!r}") from None
    except InvalidAction as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return service.summary(rollout)
