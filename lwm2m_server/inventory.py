"""Inventory on registration: read /3/0, /32001/0 and /5/0 into a :class:`DeviceProfile`, observe what OTA needs.

Runs as a registry listener after every Register (and after an Update that moved the device, since observations
are bound to the address), at most ``concurrency`` devices at a time. Only objects the device announced are
read/observed; a device without 32001 is still managed and marked ``hardware_known=False``. Profiles are cached
in memory and persisted through the store.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lwm2m_server.coap.device_client import DeviceClient
from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.coap.observation import Observation
from lwm2m_server.events import EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.fwupdate import PROTOCOL_SCHEMES, delivery_method
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.registration import Registration
from lwm2m_server.registry import Kind, Registry
from lwm2m_server.store.base import Store

log = get_logger(__name__)

OBSERVED = (LwM2MPath(5, 0, 3), LwM2MPath(5, 0, 5), LwM2MPath(32002, 0))
# Devices inventoried at once. aiocoap scans every active exchange on each response (NSTART bookkeeping), so
# 10k devices registering at once must not become 50k exchanges in flight: that made REST reads wait seconds.
DEFAULT_CONCURRENCY = 64
UNREACHABLE_CODES = frozenset({"timeout", "network"})
"""Read failures that mean the device did not answer at all (not an error code it sent)."""


@dataclass
class DeviceProfile:
    manufacturer: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    ram_total: int | None = None
    ram_free_ml: int | None = None
    flash_total: int | None = None
    flash_free: int | None = None
    cpu: str | None = None
    clock_mhz: int | None = None
    fpu: bool | None = None
    accelerator: str | None = None
    accelerator_sram: int | None = None
    runtime: str | None = None
    ops: list[str] = field(default_factory=list)
    max_package: int | None = None
    delivery_method: str | None = None
    protocols: list[str] = field(default_factory=list)
    hardware_known: bool = False

    @classmethod
    def from_content(cls, device: Content, hardware: Content | None, firmware: Content | None) -> DeviceProfile:
        def get(content: Content | None, *ids: int) -> Any:
            return None if content is None else content.get(LwM2MPath(*ids))

        def multi(content: Content | None, obj: int, res: int) -> list[Any]:
            if content is None:
                return []
            items = sorted((p, v) for p, v in content.items() if p.object_id == obj and p.resource_id == res)
            return [v for _, v in items]

        def as_int(v: Any) -> int | None:
            return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        def as_str(v: Any) -> str | None:
            return v if isinstance(v, str) else None

        hw = hardware if hardware else None
        delivery = delivery_method(as_int(get(firmware, 5, 0, 9)))
        return cls(
            manufacturer=as_str(get(device, 3, 0, 0)),
            model=as_str(get(device, 3, 0, 1)),
            firmware_version=as_str(get(device, 3, 0, 3)),
            ram_total=as_int(get(hw, 32001, 0, 0)),
            ram_free_ml=as_int(get(hw, 32001, 0, 1)),
            flash_total=as_int(get(hw, 32001, 0, 2)),
            flash_free=as_int(get(hw, 32001, 0, 3)),
            cpu=as_str(get(hw, 32001, 0, 4)),
            clock_mhz=as_int(get(hw, 32001, 0, 5)),
            fpu=v if isinstance(v := get(hw, 32001, 0, 6), bool) else None,
            accelerator=as_str(get(hw, 32001, 0, 7)),
            accelerator_sram=as_int(get(hw, 32001, 0, 8)),
            runtime=as_str(get(hw, 32001, 0, 9)),
            ops=[str(o) for o in multi(hw, 32001, 10)],
            max_package=as_int(get(hw, 32001, 0, 11)),
            delivery_method=delivery.human if delivery is not None else None,
            protocols=[PROTOCOL_SCHEMES.get(int(p), str(p)) for p in multi(firmware, 5, 8) if isinstance(p, int)],
            hardware_known=hw is not None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceProfile:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class Inventory:
    def __init__(
        self,
        client: DeviceClient,
        registry: Registry,
        store: Store,
        events: EventBus,
        *,
        timeout: float | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.client = client
        self.registry = registry
        self.store = store
        self.events = events
        self.timeout = timeout
        self._profiles: dict[str, DeviceProfile] = {}
        self._observed_from: dict[str, tuple[str, int]] = {}
        self._observing: dict[str, dict[LwM2MPath, Observation]] = {}  # our own handles (others may share them)
        self._absent: dict[str, set[LwM2MPath]] = {}  # object instances the device answered 4.04 Not Found for
        self._gate = asyncio.Semaphore(max(1, concurrency))
        registry.add_listener(self._on_registration)

    async def start(self) -> None:
        for endpoint, data in (await self.store.load_profiles()).items():
            self._profiles[endpoint] = DeviceProfile.from_dict(data)

    def get(self, endpoint: str) -> DeviceProfile | None:
        return self._profiles.get(endpoint)

    async def profile(self, endpoint: str) -> DeviceProfile | None:
        cached = self._profiles.get(endpoint)
        if cached is not None:
            return cached
        data = await self.store.load_profile(endpoint)
        return DeviceProfile.from_dict(data) if data is not None else None

    async def _on_registration(self, reg: Registration, kind: Kind) -> None:
        if kind == "registered":
            async with self._gate:  # a storm's inventories queue here, not as thousands of CoAP exchanges
                if not self._current(reg):
                    return  # re-registered or gone while waiting: the newer registration's listener does it
                unreachable: list[str] = []
                await self.collect(reg, unreachable)
                if not unreachable and self._current(reg):
                    await self.observe(reg)
        elif kind == "updated":
            current = self.registry.get(reg.endpoint)
            before = self._observed_from.get(reg.endpoint)
            if current is not None and before is not None and before != current.address:
                await self.observe(current)  # observations are bound to the old address: re-establish
        else:
            self._observed_from.pop(reg.endpoint, None)
            self._observing.pop(reg.endpoint, None)
            self._absent.pop(reg.endpoint, None)

    def _current(self, reg: Registration) -> bool:
        """``reg`` is still the endpoint's live registration (not de-registered, expired or replaced)."""
        return self.registry.get(reg.endpoint) is reg

    async def _read(self, reg: Registration, path: LwM2MPath, unreachable: list[str]) -> Content | None:
        """The object, or None; a device that did not answer at all (timeout, ICMP error) or has gone meanwhile
        is added to ``unreachable`` and no later step of its inventory asks it anything."""
        if unreachable:
            return None
        if not self._current(reg):
            unreachable.append("gone")
            return None
        try:
            return await self.client.read(reg.endpoint, path, timeout=self.timeout)
        except DeviceError as exc:
            log.info("inventory_read_failed", endpoint=reg.endpoint, path=str(path), code=exc.coap_code)
            if exc.coap_code in UNREACHABLE_CODES:
                unreachable.append(exc.coap_code)
            elif exc.coap_code == "4.04":
                self._absent.setdefault(reg.endpoint, set()).add(path)
            return None

    async def collect(self, reg: Registration, unreachable: list[str] | None = None) -> DeviceProfile:
        """Read the profile; ``unreachable`` (a list to fill) says why it stopped asking, when it did: a device
        that timed out or refused (ICMP port unreachable) on one read is not asked the next ones."""
        why: list[str] = [] if unreachable is None else unreachable
        self._absent.pop(reg.endpoint, None)
        device = await self._read(reg, LwM2MPath(3, 0), why)
        hardware = await self._read(reg, LwM2MPath(32001, 0), why) if reg.has_object(32001) else None
        firmware = await self._read(reg, LwM2MPath(5, 0), why) if reg.has_object(5) else None
        profile = DeviceProfile.from_content(device or {}, hardware, firmware)
        if not self._current(reg):
            return profile  # re-registered or gone meanwhile: the newer registration's listener wins
        self._profiles[reg.endpoint] = profile
        await self.store.save_profile(reg.endpoint, profile.to_dict())
        self.events.emit("inventory", reg.endpoint, hardware_known=profile.hardware_known, model=profile.model)
        log.info("inventory", endpoint=reg.endpoint, hardware_known=profile.hardware_known, ram=profile.ram_total)
        return profile

    def _observable(self, reg: Registration) -> list[LwM2MPath]:
        """What OTA follows, of the objects the device announced, but not below an instance it said is Not Found."""
        absent = self._absent.get(reg.endpoint, ())
        return [p for p in OBSERVED if reg.has_object(p.object_id)
                and LwM2MPath(p.object_id, p.object_instance) not in absent]  # fmt: skip

    async def observe(self, reg: Registration) -> None:
        """Observe what OTA follows, with the inventory's own handles: an operator's observation of the same
        path shares the CoAP observation, and cancelling theirs never cancels ours."""
        self._observed_from[reg.endpoint] = reg.address
        mine = self._observing.setdefault(reg.endpoint, {})
        for path in self._observable(reg):
            if not self._current(reg):
                return  # gone (or replaced: the new registration's listener observes) while observing
            current = mine.get(path)
            if current is not None and not current.cancelled:
                continue
            try:
                mine[path] = await self.client.observe(reg.endpoint, path, timeout=self.timeout, owner="inventory",
                                                       buffered=False)  # OTA follows the events: no queue  # fmt: skip
            except DeviceError as exc:
                log.info("inventory_observe_failed", endpoint=reg.endpoint, path=str(path), code=exc.coap_code)
                if exc.coap_code in UNREACHABLE_CODES:
                    return
