"""Queue mode: presence (awake/sleeping) and a bounded, persisted, per-device FIFO of server→device requests.

A queue-mode client only listens for ``queue_mode_window_s`` after an uplink (Register, Update, notification).
Requests for a sleeping device are appended to its FIFO — in memory *and* in the ``queued_requests`` table, so a
restart keeps them — and flushed in order, one at a time, on the next uplink. The timeout of a queued request
counts from the moment it is sent. Callers either await the result or keep the :class:`QueuedRequest` handle;
cancelling the awaiting caller withdraws a not-yet-sent request. Requests reloaded after a restart have no caller:
their outcome is published as a ``queued_result`` event.

Devices without queue mode bypass all of this (requests are sent at once, concurrently).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from lwm2m_server.coap.errors import DeviceError, DeviceNotRegistered, DeviceTimeout, QueueFull
from lwm2m_server.coap.exchange import RawResponse, RequestSpec
from lwm2m_server.events import EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.registration import Registration
from lwm2m_server.registry import Kind, Registry
from lwm2m_server.store.repositories import QueuedRow, QueueRepository
from lwm2m_server.timers import TimerHeap

log = get_logger(__name__)

Sender = Callable[[Registration, RequestSpec, float], Awaitable[RawResponse]]

@dataclass(eq=False)
class QueuedRequest:
    """Handle of a request waiting for (or being sent to) a sleeping device."""

    seq: int
    endpoint: str
    spec: RequestSpec
    timeout: float
    created_at: float = field(default_factory=time.time)
    future: asyncio.Future[RawResponse] | None = None
    state: str = "queued"  # queued -> sending -> done | failed | withdrawn

    async def result(self) -> RawResponse:
        if self.future is None:
            raise RuntimeError("request reloaded after a restart has no awaitable result")
        return await asyncio.shield(self.future)


class QueueManager:
    def __init__(
        self,
        registry: Registry,
        store: QueueRepository,
        events: EventBus,
        sender: Sender,
        *,
        window_s: float = 93.0,
        max_queued: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.store = store
        self.events = events
        self._sender = sender
        self.window_s = window_s
        self.max_queued = max_queued
        self._clock = clock
        self._queues: dict[str, deque[QueuedRequest]] = {}
        self._awake_until: dict[str, float] = {}
        self._flushing: dict[str, asyncio.Task[None]] = {}
        self._wakers: dict[str, asyncio.Event] = {}
        self._timers = TimerHeap(self._on_timer, clock)
        self._seq = itertools.count(1)
        self._stopping = False
        registry.add_hook(self._on_registration)

    async def start(self) -> None:
        rows = await self.store.load()
        top = 0
        for row in rows:
            top = max(top, row.seq)
            spec = RequestSpec.from_json(row.spec, row.payload)
            item = QueuedRequest(row.seq, row.endpoint, spec, row.timeout, row.created_at)
            self._queues.setdefault(item.endpoint, deque()).append(item)
        self._seq = itertools.count(top + 1)
        for reg in self.registry.all():
            if reg.queue_mode:
                self._awake_until[reg.endpoint] = reg.last_seen + self.window_s
                self._timers.arm("sleep", reg.endpoint, reg.last_seen + self.window_s)
        self._timers.start()
        if rows:
            log.info("queue_reloaded", requests=len(rows), devices=len(self._queues))

    async def stop(self) -> None:
        self._stopping = True  # futures cancelled below must not withdraw (delete) their persisted requests
        self._release_waiters()
        await self._timers.stop()
        tasks = list(self._flushing.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for q in self._queues.values():
            for item in q:
                if item.future is not None and not item.future.done():
                    item.future.cancel()

    # -- presence ---------------------------------------------------------------------------------------------
    def is_awake(self, reg: Registration) -> bool:
        if not reg.queue_mode:
            return True
        return self._clock() < self._awake_until.get(reg.endpoint, 0.0)

    def queued(self, endpoint: str) -> list[QueuedRequest]:
        return list(self._queues.get(endpoint, ()))

    def on_uplink(self, endpoint: str) -> None:
        """Register/Update/notification from ``endpoint``: it is listening for ``window_s`` now; flush its FIFO."""
        reg = self.registry.get(endpoint)
        if reg is None or not reg.queue_mode:
            return
        was_awake = self.is_awake(reg)
        until = self._clock() + self.window_s
        self._awake_until[endpoint] = until
        self._timers.arm("sleep", endpoint, until)
        if not was_awake:
            self.events.emit("awake", endpoint, queued=len(self._queues.get(endpoint, ())))
        waker = self._wakers.pop(endpoint, None)
        if waker is not None:
            waker.set()
        self._kick(endpoint)

    async def wait_awake(self, reg: Registration) -> Registration:
        """Wait for the device's next wake-up (used for observe on a sleeping device); returns its current
        registration. Raises :class:`DeviceNotRegistered` if it de-registers or expires first (the rule for
        queued requests), or when the queue stops, so a waiter never outlives the registration."""
        while True:
            current = self.registry.get(reg.endpoint)
            if current is None or self._stopping:
                raise DeviceNotRegistered(reg.endpoint)
            if self.is_awake(current):
                return current
            await self._wakers.setdefault(reg.endpoint, asyncio.Event()).wait()

    def _release_waiters(self, endpoint: str | None = None) -> None:
        keys = [endpoint] if endpoint is not None else list(self._wakers)
        for key in keys:
            waker = self._wakers.pop(key, None)
            if waker is not None:
                waker.set()

    def _on_timer(self, kind: str, key: Hashable) -> None:
        if kind == "sleep" and isinstance(key, str) and key in self.registry:
            self._awake_until.pop(key, None)
            self.events.emit("sleeping", key, queued=len(self._queues.get(key, ())))

    def _on_registration(self, reg: Registration, kind: Kind) -> None:
        if kind in ("registered", "updated"):
            if not reg.queue_mode:
                self._timers.cancel("sleep", reg.endpoint)
                self._awake_until.pop(reg.endpoint, None)
            self.on_uplink(reg.endpoint)
            if not reg.queue_mode:
                self._kick(reg.endpoint)  # binding changed from UQ to U: drain what was queued
        else:
            self._timers.cancel("sleep", reg.endpoint)
            self._awake_until.pop(reg.endpoint, None)
            self._drop_all(reg.endpoint, DeviceNotRegistered(reg.endpoint))
            self._release_waiters(reg.endpoint)

    # -- requests ---------------------------------------------------------------------------------------------
    async def request(self, reg: Registration, spec: RequestSpec, timeout: float) -> RawResponse:
        """Send now if the device listens and nothing is queued before us; else queue and await the result."""
        if self.is_awake(reg) and not self._queues.get(reg.endpoint):
            return await self._sender(reg, spec, timeout)
        item = await self.enqueue(reg, spec, timeout)
        assert item.future is not None
        return await item.future

    async def enqueue(self, reg: Registration, spec: RequestSpec, timeout: float) -> QueuedRequest:
        q = self._queues.setdefault(reg.endpoint, deque())
        if len(q) >= self.max_queued:
            raise QueueFull(reg.endpoint, len(q))
        fut: asyncio.Future[RawResponse] = asyncio.get_running_loop().create_future()
        item = QueuedRequest(next(self._seq), reg.endpoint, spec, timeout, future=fut)
        q.append(item)
        fut.add_done_callback(lambda f, it=item: self._withdraw_if_cancelled(it))  # type: ignore[misc]
        await self.store.add(
            QueuedRow(item.seq, item.endpoint, spec.to_json(), spec.payload, timeout, item.created_at)
        )
        log.info("request_queued", endpoint=reg.endpoint, method=spec.method, path=spec.path, depth=len(q))
        if self.is_awake(reg):
            self._kick(reg.endpoint)
        return item

    def _withdraw_if_cancelled(self, item: QueuedRequest) -> None:
        if self._stopping or item.future is None or not item.future.cancelled() or item.state != "queued":
            return
        q = self._queues.get(item.endpoint)
        if q is not None and item in q:
            q.remove(item)
            item.state = "withdrawn"
            self._delete_row(item)

    def _delete_row(self, item: QueuedRequest) -> None:
        task = asyncio.ensure_future(self.store.remove(item.seq))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _drop_all(self, endpoint: str, exc: DeviceError) -> None:
        q = self._queues.pop(endpoint, None)
        task = self._flushing.pop(endpoint, None)
        if task is not None:
            task.cancel()
        if not q:
            return
        for item in q:
            item.state = "failed"
            if item.future is not None and not item.future.done():
                item.future.set_exception(exc)
                item.future.exception()  # mark retrieved: nobody may be awaiting a handle
        t = asyncio.ensure_future(self.store.remove_endpoint(endpoint))
        t.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _kick(self, endpoint: str) -> None:
        if self._queues.get(endpoint) and endpoint not in self._flushing:
            task = asyncio.get_running_loop().create_task(self._flush(endpoint), name=f"queue-flush-{endpoint}")
            self._flushing[endpoint] = task
            task.add_done_callback(lambda t, ep=endpoint: self._flush_done(ep, t))  # type: ignore[misc]

    def _flush_done(self, endpoint: str, task: asyncio.Task[None]) -> None:
        if self._flushing.get(endpoint) is task:
            del self._flushing[endpoint]
        if not task.cancelled() and task.exception() is not None:
            log.error("queue_flush_failed", endpoint=endpoint, error=repr(task.exception()))

    async def _flush(self, endpoint: str) -> None:
        sent = 0
        while True:
            reg = self.registry.get(endpoint)
            q = self._queues.get(endpoint)
            if reg is None or not q or not self.is_awake(reg):
                break
            item = q[0]
            item.state = "sending"
            try:
                resp = await self._sender(reg, item.spec, item.timeout)
            except DeviceTimeout as exc:
                if reg.queue_mode and not self.is_awake(reg):
                    item.state = "queued"  # it fell asleep under us: keep the request for the next wake-up
                    break
                self._finish(item, exc=exc)
            except DeviceError as exc:
                self._finish(item, exc=exc)
            else:
                self._finish(item, resp=resp)
            if q and q[0] is item:
                q.popleft()
            sent += 1
        if sent:
            log.info("queue_flushed", endpoint=endpoint, sent=sent, left=len(self._queues.get(endpoint, ())))

    def _finish(self, item: QueuedRequest, *, resp: RawResponse | None = None, exc: DeviceError | None = None) -> None:
        item.state = "done" if exc is None else "failed"
        self._delete_row(item)
        if item.future is not None:
            if not item.future.done():
                if exc is not None:
                    item.future.set_exception(exc)
                else:
                    assert resp is not None
                    item.future.set_result(resp)
        else:
            self.events.emit(
                "queued_result",
                item.endpoint,
                seq=item.seq,
                method=item.spec.method,
                path=item.spec.path,
                code=resp.code if resp else exc.coap_code if exc else None,
            )
