"""Live registrations: Register / Update / De-register / expiry, persisted through the :class:`Store`.

The registry is the single owner of registration state. It indexes by endpoint and by short registration id,
arms one expiry timer per registration on a shared :class:`TimerHeap` (lifetime + grace, counted from the last
Register/Update), and tells the rest of the server through

* *hooks* — synchronous, called inline before the CoAP reply (e.g. the DeviceClient drops the observations of a
  replaced registration before anybody re-observes), and
* *listeners* — ``async fn(reg, kind)``, each run as a tracked task so the reply is never delayed.

``kind`` is one of ``"registered"``, ``"updated"``, ``"deregistered"``, ``"expired"``.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from sys import intern
from typing import TYPE_CHECKING, Literal

from lwm2m_server.events import EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.registration import intern_objects, intern_set
from lwm2m_server.registration import Registration
from lwm2m_server.timers import TimerHeap

if TYPE_CHECKING:
    from lwm2m_server.protocol.registration import RegistrationRequest, UpdateRequest
    from lwm2m_server.store.base import Store

log = get_logger(__name__)

ID_POOL = 256  # registration ids drawn per random read (8 url-safe characters, 48 random bits each)
Kind = Literal["registered", "updated", "deregistered", "expired"]
Listener = Callable[[Registration, Kind], Awaitable[None]]
Hook = Callable[[Registration, Kind], None]

__all__ = ["Hook", "Kind", "Listener", "Registration", "Registry"]


class Registry:
    def __init__(
        self,
        store: Store,
        events: EventBus,
        *,
        grace_s: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.events = events
        self.grace_s = grace_s
        self._clock = clock
        self._by_ep: dict[str, Registration] = {}
        self._ep_by_id: dict[str, str] = {}
        self._ep_by_addr: dict[tuple[str, int], str] = {}  # where each registration was last heard from
        self._timers = TimerHeap(self._on_timer, clock)
        self._hooks: list[Hook] = []
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._id_pool: list[str] = []

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Reload unexpired registrations from the store; expire (and delete) the rest."""
        now = self._clock()
        reloaded = expired = 0
        for reg in await self.store.load_registrations():
            if reg.expires_at(self.grace_s) <= now:
                await self.store.delete_registration(reg.endpoint)
                self.events.emit("expired", reg.endpoint, reg_id=reg.reg_id, reason="expired while server was down")
                expired += 1
                continue
            self._index(reg)
            reloaded += 1
        if expired:
            await self.store.flush()
        self._timers.start()
        log.info("registry_started", reloaded=reloaded, expired=expired)

    async def stop(self) -> None:
        await self._timers.stop()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def add_hook(self, hook: Hook) -> None:
        self._hooks.append(hook)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- queries ----------------------------------------------------------------------------------------------
    def get(self, endpoint: str) -> Registration | None:
        return self._by_ep.get(endpoint)

    def by_id(self, reg_id: str) -> Registration | None:
        ep = self._ep_by_id.get(reg_id)
        return self._by_ep.get(ep) if ep is not None else None

    def by_address(self, host: str, port: int) -> Registration | None:
        """The registration last heard from ``host:port`` (a Send or other uplink names no endpoint)."""
        ep = self._ep_by_addr.get((host, port))
        reg = self._by_ep.get(ep) if ep is not None else None
        return reg if reg is not None and reg.address == (host, port) else None

    def all(self) -> list[Registration]:
        return list(self._by_ep.values())

    def __len__(self) -> int:
        return len(self._by_ep)

    def __iter__(self) -> Iterator[Registration]:
        return iter(list(self._by_ep.values()))

    def __contains__(self, endpoint: object) -> bool:
        return endpoint in self._by_ep

    def expires_at(self, endpoint: str) -> float | None:
        return self._timers.deadline("expiry", endpoint)

    # -- operations (called by the /rd resource) --------------------------------------------------------------
    async def register(
        self, req: RegistrationRequest, host: str, port: int, *, security: str = "none"
    ) -> Registration:
        now = self._clock()
        old = self._by_ep.get(req.endpoint)
        if old is not None:
            self._ep_by_id.pop(old.reg_id, None)
        reg = Registration(
            endpoint=req.endpoint,
            reg_id=self._new_id(),
            host=intern(host),
            port=port,
            lifetime=req.lifetime,
            lwm2m_version=intern(req.lwm2m_version),
            binding=intern(req.binding),
            queue_mode=req.queue_mode,
            root_path=intern(req.root_path),
            content_formats=intern_set(frozenset(req.content_formats)),
            objects=intern_objects(req.objects),
            instances=intern_set(frozenset(req.instances)),
            sms=req.sms,
            registered_at=now,
            security=security,
        )
        self._index(reg)
        await self.store.save_registration(reg)
        self.events.emit(
            "registered",
            reg.endpoint,
            reg_id=reg.reg_id,
            address=f"{host}:{port}",
            lifetime=reg.lifetime,
            lwm2m_version=reg.lwm2m_version,
            binding=reg.binding,
            security=security,
            replaced=old is not None,
        )
        self._notify(reg, "registered")
        return reg

    async def update(
        self, reg_id: str, upd: UpdateRequest, host: str, port: int, *, security: str | None = None
    ) -> Registration | None:
        """``security``: the transport this Update came over; a change counts as a move (new session)."""
        reg = self.by_id(reg_id)
        if reg is None:
            return None
        now = self._clock()
        moved = (host, port) != reg.address or (security is not None and security != reg.security)
        if security is not None:
            reg.security = security
        if moved and self._ep_by_addr.get(reg.address) == reg.endpoint:
            del self._ep_by_addr[reg.address]
        reg.host, reg.port = intern(host), port
        self._ep_by_addr[reg.address] = reg.endpoint
        if upd.lifetime is not None:
            reg.lifetime = upd.lifetime
        if upd.binding is not None:
            reg.binding = intern(upd.binding)
        if upd.queue_mode is not None:
            reg.queue_mode = upd.queue_mode
        if upd.sms is not None:
            reg.sms = upd.sms
        if upd.objects is not None:
            reg.objects = intern_objects(upd.objects)
        if upd.instances is not None:
            reg.instances = intern_set(frozenset(upd.instances))
        if upd.root_path is not None:
            reg.root_path = intern(upd.root_path)
        if upd.content_formats is not None:
            reg.content_formats = intern_set(frozenset(upd.content_formats))
        reg.updated_at = reg.last_seen = now
        self._arm(reg)
        await self.store.save_registration(reg)
        data: dict[str, object] = {"reg_id": reg.reg_id, "lifetime": reg.lifetime}
        if moved:
            data["address"] = f"{host}:{port}"
        if upd.objects is not None:
            data["objects_changed"] = True
        self.events.emit("updated", reg.endpoint, **data)
        self._notify(reg, "updated")
        return reg

    async def deregister(self, reg_id: str) -> Registration | None:
        reg = self.by_id(reg_id)
        if reg is None:
            return None
        await self._remove(reg, "deregistered")
        return reg

    def touch(self, endpoint: str) -> None:
        """A notification (or other uplink) arrived: the device is alive; this does not extend the lifetime."""
        reg = self._by_ep.get(endpoint)
        if reg is not None:
            reg.last_seen = self._clock()

    # -- internals --------------------------------------------------------------------------------------------
    def _new_id(self) -> str:
        while True:
            if not self._id_pool:  # one getrandom() call per ID_POOL ids instead of one per Register
                raw = base64.urlsafe_b64encode(secrets.token_bytes(6 * ID_POOL)).decode()
                raw = raw.replace("-", "x").replace("_", "y")
                self._id_pool = [raw[i : i + 8] for i in range(0, 8 * ID_POOL, 8)]
            rid = self._id_pool.pop()
            if rid not in self._ep_by_id:
                return rid

    def _index(self, reg: Registration) -> None:
        self._by_ep[reg.endpoint] = reg
        self._ep_by_id[reg.reg_id] = reg.endpoint
        self._ep_by_addr[reg.address] = reg.endpoint
        self._arm(reg)

    def _arm(self, reg: Registration) -> None:
        self._timers.arm("expiry", reg.endpoint, reg.expires_at(self.grace_s))

    async def _remove(self, reg: Registration, kind: Kind) -> None:
        self._by_ep.pop(reg.endpoint, None)
        self._ep_by_id.pop(reg.reg_id, None)
        if self._ep_by_addr.get(reg.address) == reg.endpoint:
            del self._ep_by_addr[reg.address]
        self._timers.cancel("expiry", reg.endpoint)
        await self.store.delete_registration(reg.endpoint)
        self.events.emit(kind, reg.endpoint, reg_id=reg.reg_id)
        self._notify(reg, kind)

    def _on_timer(self, kind: str, key: Hashable) -> None:
        if kind != "expiry" or not isinstance(key, str):
            return
        reg = self._by_ep.get(key)
        if reg is None:
            return
        log.info("registration_expired", endpoint=key, reg_id=reg.reg_id)
        self._spawn(self._remove(reg, "expired"))

    def _notify(self, reg: Registration, kind: Kind) -> None:
        for hook in self._hooks:
            try:
                hook(reg, kind)
            except Exception:
                log.exception("registry_hook_failed", endpoint=reg.endpoint, kind=kind)
        for listener in self._listeners:
            self._spawn(listener(reg, kind))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("registry_listener_failed", error=repr(task.exception()))

    @property
    def pending_tasks(self) -> int:
        return len(self._tasks)
