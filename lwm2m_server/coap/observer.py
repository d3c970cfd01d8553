"""Observe on the server side, mixed into :class:`lwm2m_server.coap.device_client.DeviceClient`: it uses the
client's registration lookup, queue, negotiation and decoding, and keeps the handles of every observation it
started. Single-path observations are shared between owners (see :mod:`lwm2m_server.coap.observation`); those of
plain-CoAP devices are the fast path's alone (:mod:`lwm2m_server.coap.fast_observe`). Observe-Composite is
:mod:`lwm2m_server.coap.composite_observer`, on top of this; ending on a new registration or a move is here for
both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiocoap
import aiocoap.error

from lwm2m_server.coap.composite_observation import CompositeObservation
from lwm2m_server.coap.errors import BadResponse, DeviceError, DeviceTimeout
from lwm2m_server.coap.exchange import RawResponse, RequestSpec, abandon, build_message, turn
from lwm2m_server.coap.fast_client import FastClient, FastClientError
from lwm2m_server.coap.fast_notifications import FastNotifications
from lwm2m_server.coap.fast_observe import FastObserveRequest, observe_request, rest_of_blocks
from lwm2m_server.coap.observation import NotifyCallback, Observation, SharedObservation
from lwm2m_server.coap.stats import CoapStats
from lwm2m_server.coap.turns import PeerTurns
from lwm2m_server.events import EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.jsonvalues import content_to_json
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.queue import QueueManager
from lwm2m_server.registration import Registration
from lwm2m_server.registry import Kind, Registry

log = get_logger(__name__)


def ended_by_library(obs: SharedObservation | CompositeObservation, error: BaseException) -> None:
    """aiocoap's errback (network error, the device ended it): aiocoap cancels its client observation itself
    right after the errbacks, so it is dropped here, not cancelled (a second cancel fails its assertion, and the
    observation task dies with "Task exception was never retrieved"). Then the handles end with the error."""
    obs.aiocoap_obs = None
    obs.end(error)


def as_path(path: LwM2MPath | str) -> LwM2MPath:
    return path if isinstance(path, LwM2MPath) else LwM2MPath.parse(path)


class ObserveOperations:
    """The observe half of DeviceClient (which provides the attributes and helpers declared here)."""

    registry: Registry
    events: EventBus
    queue: QueueManager | None
    stats: CoapStats
    default_timeout: float
    turns: PeerTurns | None
    notifications: FastNotifications | None  # the fast path's matcher of notifications (plain devices)
    fast: FastClient | None  # the fast path's CON client: plain observations of plain devices are sent by it
    _completing: set[asyncio.Task[None]]  # notifications in blocks being completed (fast observations)
    _observations: dict[str, list[Observation]]
    _shared: dict[str, dict[tuple[LwM2MPath, int], SharedObservation]]
    _starting: dict[tuple[str, tuple[LwM2MPath, int]], asyncio.Future[None]]
    _composites: dict[str, list[CompositeObservation]]

    def _ctx(self) -> aiocoap.Context:
        raise NotImplementedError

    def _reg(self, endpoint: str) -> Registration:
        raise NotImplementedError

    def _remote(self, reg: Registration) -> Any:
        """Where a request to the device goes: its DTLS session or its resolved plain address."""
        raise NotImplementedError

    def _observe_message(self, reg: Registration, spec: RequestSpec) -> tuple[aiocoap.Context, aiocoap.Message]:
        return self._ctx(), build_message(reg, spec, observe=0, remote=self._remote(reg))

    @staticmethod
    def _check(reg: Registration, resp: RawResponse, what: str, expected: tuple[str, ...] = ()) -> None:
        raise NotImplementedError

    def _decode(self, reg: Registration, path: LwM2MPath, resp: RawResponse, asked: int) -> Content:
        raise NotImplementedError

    def _decode_root(self, reg: Registration, resp: RawResponse, asked: int, what: str) -> Content:
        raise NotImplementedError

    def _format(self, reg: Registration, path: LwM2MPath, *, for_write: bool = False) -> int:
        raise NotImplementedError

    def _composite_format(self, reg: Registration, what: str) -> int:
        raise NotImplementedError

    async def observe(
        self,
        endpoint: str,
        path: LwM2MPath | str,
        *,
        callback: NotifyCallback | None = None,
        content_format: int | None = None,
        timeout: float | None = None,
        owner: str | None = None,
        buffered: bool = True,
    ) -> Observation:
        """Observe ``path``; returns this caller's own handle. The current value is in ``.value``; later
        notifications go to ``callback`` and the async iterator (``buffered=False``: queued for it only once it
        is iterated, for an owner that never iterates). Owners of the same path (and format) share one
        CoAP observation, which ends when the last handle is cancelled. A sleeping queue-mode device is observed
        on its next wake-up; as for queued requests, ``timeout`` counts from then, and a de-registration or
        expiry meanwhile raises DeviceNotRegistered."""
        p = as_path(path)
        while True:
            reg = self._reg(endpoint)
            cf = content_format if content_format is not None else self._format(reg, p)
            key = (p, cf)
            shared = self._shared.get(endpoint, {}).get(key)
            if shared is not None and not shared.ended and shared.reg_id == reg.reg_id:
                return self._adopt(shared.attach(owner, callback, buffered=buffered))
            pending = self._starting.get((endpoint, key))
            if pending is None:
                break
            await asyncio.wait([pending])  # another owner is starting it: share theirs (or retry if it failed)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._starting[(endpoint, key)] = done
        try:
            return await self._start_observation(endpoint, p, cf, timeout, owner, callback, buffered)
        finally:
            del self._starting[(endpoint, key)]
            done.set_result(None)

    async def _start_observation(
        self,
        endpoint: str,
        p: LwM2MPath,
        cf: int,
        timeout: float | None,
        owner: str | None,
        callback: NotifyCallback | None,
        buffered: bool,
    ) -> Observation:
        reg = self._reg(endpoint)
        if self.queue is not None:
            reg = await self.queue.wait_awake(reg)
        what = f"observe {p}"
        client, fast = self.fast, self.notifications
        if client is not None and client.connected and fast is not None and reg.security == "none":
            return await self._start_fast_observation(reg, p, cf, timeout, owner, callback, buffered, client, fast)
        msg, aobs, initial = await self._observe_request(
            reg, RequestSpec("GET", str(p), accept=cf), what, timeout, lambda resp: self._decode(reg, p, resp, cf)
        )
        shared = SharedObservation(endpoint, p, reg.reg_id, reg.address, cf, initial)
        if msg.opt.observe is None or aobs is None or aobs.cancelled:
            obs = shared.attach(owner, buffered=buffered)
            obs._end(DeviceError("not_observable", f"{p} is not observable", endpoint=endpoint))
            return obs
        shared.aiocoap_obs = aobs
        aobs.register_callback(lambda m: self._on_notify(shared, RawResponse.from_message(m)),
                               _suppress_deprecation=True)  # fmt: skip
        aobs.register_errback(lambda e: ended_by_library(shared, e), _suppress_deprecation=True)
        self._shared.setdefault(endpoint, {})[(p, cf)] = shared
        shared.on_end.append(self._forget_shared)
        fast = self.notifications
        if fast is not None and reg.security == "none":  # later notifications: taken by the fast path
            key = fast.watch(reg.host, reg.port, bytes(msg.token), int(msg.opt.observe),
                             lambda resp: self._on_notify(shared, resp))  # fmt: skip
            shared.on_end.append(lambda _shared: fast.unwatch(key))
        return self._adopt(shared.attach(owner, callback, buffered=buffered))

    async def _start_fast_observation(
        self,
        reg: Registration,
        p: LwM2MPath,
        cf: int,
        timeout: float | None,
        owner: str | None,
        callback: NotifyCallback | None,
        buffered: bool,
        client: FastClient,
        fast: FastNotifications,
    ) -> Observation:
        """The observation on the fast path alone (:mod:`lwm2m_server.coap.fast_observe`): aiocoap holds nothing."""
        what = f"observe {p}"
        req = FastObserveRequest.of(reg, RequestSpec("GET", str(p), accept=cf))
        t = timeout if timeout is not None else self.default_timeout
        try:
            token, resp = await observe_request(client, reg, req, what, t)
        except DeviceError as exc:
            self.stats.count_out("GET", exc.coap_code)
            raise
        self.stats.count_out("GET", resp.code)
        self._check(reg, resp, what)
        shared = SharedObservation(reg.endpoint, p, reg.reg_id, reg.address, cf, self._decode(reg, p, resp, cf))
        number = resp.options.get("observe")
        if number is None:  # answered, but not observed (RFC 7641 §3.1); a later notification on it is RST
            obs = shared.attach(owner, buffered=buffered)
            obs._end(DeviceError("not_observable", f"{p} is not observable", endpoint=reg.endpoint))
            return obs
        self._shared.setdefault(reg.endpoint, {})[(p, cf)] = shared
        shared.on_end.append(self._forget_shared)
        key = fast.watch(reg.host, reg.port, token, int(number),
                         lambda resp: self._on_fast_notify(shared, resp, client, req), owned=True,
                         on_error=lambda exc: shared.end(DeviceError("network", f"{what}: {exc}",
                                                                     endpoint=reg.endpoint)))  # fmt: skip
        shared.on_end.append(lambda _shared: fast.unwatch(key))
        return self._adopt(shared.attach(owner, callback, buffered=buffered))

    def _on_fast_notify(self, shared: SharedObservation, resp: RawResponse, client: FastClient,
                        req: FastObserveRequest) -> None:  # fmt: skip
        """An owned observation's datagram: a notification (in blocks: completed first), or its end."""
        shared.arrivals += 1
        if resp.success and resp.block2 is not None and resp.block2[2]:
            task = asyncio.get_running_loop().create_task(self._complete_notification(shared, resp, client, req))
            self._completing.add(task)
            task.add_done_callback(self._completing.discard)
            return
        self._on_notify(shared, resp)
        if resp.success and resp.options.get("observe") is None:
            shared.end()  # a 2.xx without Observe: the device ended the observation (RFC 7641 §3.2)

    async def _complete_notification(self, shared: SharedObservation, first: RawResponse, client: FastClient,
                                     req: FastObserveRequest) -> None:  # fmt: skip
        arrival, what = shared.arrivals, f"notification of {shared.path}"
        try:
            async with asyncio.timeout(self.default_timeout):
                whole = await rest_of_blocks(client, req, first, shared.endpoint, what)
        except (DeviceError, FastClientError, TimeoutError) as exc:
            log.info("notification_blocks_failed", endpoint=shared.endpoint, path=str(shared.path), error=str(exc))
            return
        if shared.arrivals == arrival:  # nothing newer arrived meanwhile: this is still the latest state
            self._on_notify(shared, whole)

    async def _observe_request(
        self,
        reg: Registration,
        spec: RequestSpec,
        what: str,
        timeout: float | None,
        decode: Callable[[RawResponse], Content],
    ) -> tuple[aiocoap.Message, Any, Content]:
        """Send an observe request (Observe: 0) and decode its answer: the response message, aiocoap's client
        observation (None when the device did not take it) and the initial content. A timeout, a network error, an
        error answer or an undecodable one raises DeviceError and leaves no observation behind."""
        ctx, sent = self._observe_message(reg, spec)
        t = timeout if timeout is not None else self.default_timeout
        async with turn(self.turns, reg, t, what) as left:  # NSTART with the fast client, until the first answer
            request = ctx.request(sent)
            try:
                msg = await asyncio.wait_for(request.response, left)
            except asyncio.CancelledError:
                self._abandon_observe(sent, request)
                raise
            except (TimeoutError, aiocoap.error.TimeoutError) as exc:
                self._abandon_observe(sent, request)
                self.stats.count_out(spec.method, "timeout")
                raise DeviceTimeout(f"{what}: no response in {t:g}s", endpoint=reg.endpoint) from exc
            except aiocoap.error.Error as exc:
                self.stats.count_out(spec.method, "network")
                raise DeviceError("network", f"{what}: {exc}", endpoint=reg.endpoint) from exc
        resp = RawResponse.from_message(msg)
        self.stats.count_out(spec.method, resp.code)
        aobs = request.observation
        try:
            self._check(reg, resp, what)
            initial = decode(resp)
        except DeviceError:
            if aobs is not None and not aobs.cancelled:
                aobs.cancel()
            raise
        return msg, aobs, initial

    def _abandon_observe(self, sent: aiocoap.Message, request: Any) -> None:
        """Nobody waits for this observe any more: stop its retransmissions (see :func:`exchange.abandon`)
        and its client-side observation."""
        abandon(self._ctx(), sent)
        aobs = getattr(request, "observation", None)
        if aobs is not None and not aobs.cancelled:
            aobs.cancel()

    def _adopt(self, obs: Observation) -> Observation:
        self._observations.setdefault(obs.endpoint, []).append(obs)
        obs._on_cancel.append(self._forget)
        return obs

    async def cancel_observe(self, endpoint: str, path: LwM2MPath | str, *, owner: str | None = None) -> int:
        """Cancel the handles on ``path`` of ``owner`` (every owner's when None); returns how many."""
        p = as_path(path)
        found = [o for o in self._observations.get(endpoint, []) if o.path == p and owner in (None, o.owner)]
        for obs in found:
            obs.cancel()
        return len(found)

    def observations(self, endpoint: str | None = None) -> list[Observation]:
        """Live handles (one per owner; owners of one path share a CoAP observation, see :meth:`coap_observations`)."""
        if endpoint is not None:
            return list(self._observations.get(endpoint, []))
        return [o for obs in self._observations.values() for o in obs]

    def coap_observations(self, endpoint: str) -> list[SharedObservation]:
        """The CoAP observations on the wire for ``endpoint``."""
        return [s for s in self._shared.get(endpoint, {}).values() if not s.ended]

    def _forget(self, obs: Observation) -> None:
        lst = self._observations.get(obs.endpoint)
        if lst and obs in lst:
            lst.remove(obs)
            if not lst:
                del self._observations[obs.endpoint]

    def _forget_shared(self, shared: SharedObservation) -> None:
        table = self._shared.get(shared.endpoint)
        key = (shared.path, shared.content_format)
        if table is not None and table.get(key) is shared:
            del table[key]
            if not table:
                del self._shared[shared.endpoint]

    def _notification(
        self,
        endpoint: str,
        label: str,
        resp: RawResponse,
        end: Callable[[], None],
        decode: Callable[[Registration, RawResponse], Content],
    ) -> Content | None:
        """A notification is an uplink (presence, queue flush); an error code or a gone registration ends the
        observation (``end``); an undecodable one is logged and skipped. The decoded content, or None."""
        self.registry.touch(endpoint)
        if self.queue is not None:
            self.queue.on_uplink(endpoint)
        reg = self.registry.get(endpoint)
        if reg is None or not resp.success:
            end()
            return None
        try:
            return decode(reg, resp)
        except BadResponse as exc:
            log.warning("notification_undecodable", endpoint=endpoint, path=label, error=str(exc))
            return None

    def _on_notify(self, shared: SharedObservation, resp: RawResponse) -> None:
        if shared.ended:
            return

        def decode(reg: Registration, resp: RawResponse) -> Content:
            return self._decode(reg, shared.path, resp, shared.content_format)

        content = self._notification(shared.endpoint, str(shared.path), resp, shared.end, decode)
        if content is None:
            return
        self.events.emit("notification", shared.endpoint, path=str(shared.path), values=content_to_json(content))
        shared.push(content)

    def _on_registration(self, reg: Registration, kind: Kind) -> None:
        """A new registration invalidates the old one's observations; a moved device's too (token + address)."""
        for shared in list(self._shared.get(reg.endpoint, {}).values()):
            stale = kind in ("deregistered", "expired") or shared.reg_id != reg.reg_id or shared.address != reg.address
            if stale:
                shared.end()
        for composite in list(self._composites.get(reg.endpoint, [])):
            gone = kind in ("deregistered", "expired")
            if gone or composite.reg_id != reg.reg_id or composite.address != reg.address:
                composite.end()

    def cancel_all(self) -> None:
        for task in list(self._completing):
            task.cancel()
        for composites in list(self._composites.values()):
            for composite in list(composites):
                composite.end()
        for table in list(self._shared.values()):
            for shared in list(table.values()):
                shared.end()
