"""``GET /api/devices`` (filters on profile fields or a rollout target expression, sort, paging) and
``GET /api/devices/{ep}``.

Each device carries what the fleet view shows: its compile class (the rollout deployer's, so a rollout groups it
the same way), the installed model from its observed /32002/0 and its Object 5 state and result.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from lwm2m_server.api import access
from lwm2m_server.api.deps import ServerDep
from lwm2m_server.api.errors import ERROR_RESPONSES, bad_request, not_found
from lwm2m_server.api.values import to_jsonable
from lwm2m_server.protocol.fwupdate import FirmwareState, UpdateResult
from lwm2m_server.registration import Registration
from lwm2m_server.rollouts.deployer import class_of, device_attributes
from lwm2m_server.rollouts.filters import MAX_FILTER_LENGTH, FilterError, parse_filter

router = APIRouter(tags=["devices"])

EndpointParam = Annotated[str, Path(min_length=1, max_length=256, description="Device endpoint name")]


class DeviceSummary(BaseModel):
    endpoint: str
    reg_id: str
    address: str
    lwm2m_version: str
    binding: str
    queue_mode: bool
    lifetime: int
    registered_at: float
    last_seen: float
    online: bool = Field(description="Registered and reachable now")
    sleeping: bool = Field(description="A queue-mode device past its listening window")
    profile: dict[str, Any] | None = Field(description="Inventory (DeviceProfile); null until read")
    compile_class: str = Field(description='Compile class key as rollouts group devices, or "hardware-unknown"')
    installed_model: str | None = Field(None, description="Model name from the observed /32002/0/0")
    installed_version: str | None = Field(None, description="Model version from the observed /32002/0/1")
    fw_state: str | None = Field(None, description="Object 5 State (/5/0/3) in words: idle, downloading, ...")
    fw_result: str | None = Field(None, description="Object 5 Update Result (/5/0/5) in words: initial, success, ...")


class DeviceDetail(DeviceSummary):
    root_path: str
    content_formats: list[int]
    objects: dict[str, str | None]
    instances: list[str]
    sms: str | None
    updated_at: float


class DeviceList(BaseModel):
    total: int = Field(description="Devices matching the filters, before paging")
    limit: int
    offset: int
    items: list[DeviceSummary]


SORT_KEYS = ("endpoint", "last_seen", "registered_at", "lwm2m_version", "binding", "manufacturer", "model", "cpu",
             "accelerator", "runtime", "ram_total", "ram_free_ml", "flash_total", "flash_free")
SORT_PATTERN = "^-?(" + "|".join(SORT_KEYS) + ")$"


def _enum_name(enum: Any, value: Any) -> str | None:
    try:
        return str(enum(int(value)).name.lower())
    except (TypeError, ValueError):
        return None


def _view(server: Any, reg: Registration, profile: Any) -> dict[str, Any]:
    data = reg.to_dict()
    sleeping = access.is_sleeping(server, reg)
    observed = access.observed_values(server, reg.endpoint)
    model, version = observed.get("/32002/0/0"), observed.get("/32002/0/1")
    data.update(online=not sleeping, sleeping=sleeping, profile=to_jsonable(profile) if profile is not None else None,
                compile_class=class_of(device_attributes(reg, profile))[0],
                installed_model=str(model) if model else None, installed_version=str(version) if version else None,
                fw_state=_enum_name(FirmwareState, observed.get("/5/0/3")),
                fw_result=_enum_name(UpdateResult, observed.get("/5/0/5")))  # fmt: skip
    return data


def _sort(matched: list[tuple[Registration, Any]], sort: str) -> list[tuple[Registration, Any]]:
    """Stable sort on one field, devices without a value last in either direction; mixed types by their text."""
    field, descending = sort.lstrip("-"), sort.startswith("-")

    def value(item: tuple[Registration, Any]) -> Any:
        reg, profile = item
        return getattr(reg, field) if hasattr(reg, field) else getattr(profile, field, None)

    known = [item for item in matched if value(item) is not None]
    unknown = [item for item in matched if value(item) is None]
    try:
        known.sort(key=value, reverse=descending)
    except TypeError:
        known.sort(key=lambda item: str(value(item)), reverse=descending)
    return known + unknown


def _eq(actual: Any, wanted: str | None) -> bool:
    return wanted is None or (actual is not None and str(actual).casefold() == wanted.casefold())


def _at_least(actual: Any, minimum: int | None) -> bool:
    return minimum is None or (isinstance(actual, int | float) and actual >= minimum)


class DeviceFilter(BaseModel):
    """Query filters; every given one must match (profile filters exclude devices without a profile)."""

    prefix: str | None = None
    lwm2m_version: str | None = None
    queue_mode: bool | None = None
    online: bool | None = None
    sleeping: bool | None = None
    manufacturer: str | None = None
    model: str | None = None
    cpu: str | None = None
    accelerator: str | None = None
    runtime: str | None = None
    fpu: bool | None = None
    hardware_known: bool | None = None
    min_ram: int | None = None
    min_ram_free: int | None = None
    min_flash: int | None = None
    min_flash_free: int | None = None
    op: list[str] | None = None

    def needs_profile(self) -> bool:
        return any(v is not None for v in (self.manufacturer, self.model, self.cpu, self.accelerator, self.runtime,
                                           self.fpu, self.hardware_known, self.min_ram, self.min_ram_free,
                                           self.min_flash, self.min_flash_free, self.op))

    def matches_registration(self, server: Any, reg: Registration) -> bool:
        if self.prefix is not None and not reg.endpoint.startswith(self.prefix):
            return False
        if self.lwm2m_version is not None and reg.lwm2m_version != self.lwm2m_version:
            return False
        if self.queue_mode is not None and reg.queue_mode != self.queue_mode:
            return False
        if self.online is not None or self.sleeping is not None:
            sleeping = access.is_sleeping(server, reg)
            if self.sleeping is not None and sleeping != self.sleeping:
                return False
            if self.online is not None and (not sleeping) != self.online:
                return False
        return True

    def matches_profile(self, p: Any) -> bool:
        if p is None:
            return not self.needs_profile()
        get = p.get if isinstance(p, dict) else lambda name: getattr(p, name, None)
        if self.fpu is not None and get("fpu") != self.fpu:
            return False
        if self.hardware_known is not None and bool(get("hardware_known")) != self.hardware_known:
            return False
        ops = {str(o).casefold() for o in (get("ops") or ())}
        return (
            _eq(get("manufacturer"), self.manufacturer)
            and _eq(get("model"), self.model)
            and _eq(get("cpu"), self.cpu)
            and _eq(get("accelerator"), self.accelerator)
            and _eq(get("runtime"), self.runtime)
            and _at_least(get("ram_total"), self.min_ram)
            and _at_least(get("ram_free_ml"), self.min_ram_free)
            and _at_least(get("flash_total"), self.min_flash)
            and _at_least(get("flash_free"), self.min_flash_free)
            and all(op.casefold() in ops for op in self.op or ())
        )


Text = Annotated[str | None, Query(max_length=256)]


@router.get("/api/devices", response_model=DeviceList, responses=ERROR_RESPONSES,
            summary="List registered devices, filtered on registration and profile fields, with paging")
async def list_devices(
    server: ServerDep,
    prefix: Annotated[str | None, Query(max_length=256, description="Endpoint name prefix")] = None,
    lwm2m_version: Text = None,
    queue_mode: bool | None = None,
    online: bool | None = None,
    sleeping: bool | None = None,
    manufacturer: Text = None,
    model: Text = None,
    cpu: Text = None,
    accelerator: Annotated[str | None, Query(max_length=256, description='e.g. "none", "ethos-u55-128"')] = None,
    runtime: Text = None,
    fpu: bool | None = None,
    hardware_known: bool | None = None,
    min_ram: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="RAM total >= bytes")] = None,
    min_ram_free: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="RAM free for ML >= bytes")] = None,
    min_flash: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Flash total >= bytes")] = None,
    min_flash_free: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Flash free >= bytes")] = None,
    op: Annotated[list[str] | None, Query(description="Supported TFLite op (repeatable, all required)")] = None,
    filter: Annotated[str | None, Query(max_length=MAX_FILTER_LENGTH,
                                        description='Rollout target expression, e.g. ram_total >= 131072')] = None,
    sort: Annotated[str, Query(pattern=SORT_PATTERN, description="Field to sort on; a leading - sorts descending: "
                                                                + ", ".join(SORT_KEYS))] = "endpoint",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> DeviceList:
    flt = DeviceFilter(prefix=prefix, lwm2m_version=lwm2m_version, queue_mode=queue_mode, online=online,
                       sleeping=sleeping, manufacturer=manufacturer, model=model, cpu=cpu, accelerator=accelerator,
                       runtime=runtime, fpu=fpu, hardware_known=hardware_known, min_ram=min_ram,
                       min_ram_free=min_ram_free, min_flash=min_flash, min_flash_free=min_flash_free, op=op)
    try:
        target = parse_filter(filter) if filter else None
    except FilterError as exc:
        raise bad_request(f"filter: {exc}") from None
    regs = [reg for reg in access.registrations(server) if flt.matches_registration(server, reg)]
    profs = await access.profiles(server, [reg.endpoint for reg in regs])
    if flt.needs_profile():
        matched = [(reg, profs[reg.endpoint]) for reg in regs if flt.matches_profile(profs[reg.endpoint])]
    else:
        matched = [(reg, profs[reg.endpoint]) for reg in regs]
    if target is not None:
        matched = [(r, p) for r, p in matched if target.matches(device_attributes(r, p))]
    if sort != "endpoint":  # registrations come sorted by endpoint
        matched = _sort(matched, sort)
    page = matched[offset: offset + limit]
    return DeviceList(total=len(matched), limit=limit, offset=offset,
                      items=[DeviceSummary.model_validate(_view(server, r, p)) for r, p in page])


@router.get("/api/devices/{endpoint}", response_model=DeviceDetail, responses=ERROR_RESPONSES,
            summary="One device: registration, profile, online/sleeping, last seen")
async def get_device(server: ServerDep, endpoint: EndpointParam) -> DeviceDetail:
    reg = access.registration(server, endpoint)
    if reg is None:
        raise not_found(f"unknown device {endpoint!r}")
    prof = await access.profile(server, endpoint)
    return DeviceDetail.model_validate(_view(server, reg, prof))
