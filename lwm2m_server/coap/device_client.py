"""Server→device LwM2M operations on a registered endpoint (read, write, execute, observe, ...).

Every operation resolves the endpoint's *current* registration (address, root path, version, ``ct=``), chooses
the Content-Format by negotiation (Accept on reads, Content-Format on writes), goes through the queue-mode FIFO
(:mod:`lwm2m_server.queue`; a no-op for devices that are always reachable) and decodes whatever comes back by
*its* Content-Format. Failures are typed: :class:`DeviceTimeout`, :class:`DeviceError` carrying the CoAP code,
:class:`BadResponse` for undecodable 2.xx payloads, :class:`DeviceNotRegistered`, :class:`QueueFull`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiocoap
import aiocoap.error

from lwm2m_server.coap.composite_observation import CompositeObservation
from lwm2m_server.coap.composite_observer import CompositeObserveOperations
from lwm2m_server.coap.dtls import SecureSessions
from lwm2m_server.coap.errors import BadResponse, DeviceError, DeviceNotRegistered, DeviceTimeout
from lwm2m_server.coap.exchange import RawResponse, RequestSpec, send, send_to_remote
from lwm2m_server.coap.fast_client import FastClient
from lwm2m_server.coap.fast_exchange import send_fast
from lwm2m_server.coap.fast_notifications import FastNotifications
from lwm2m_server.coap.observation import Observation, SharedObservation
from lwm2m_server.coap.observer import as_path
from lwm2m_server.coap.remotes import RemoteCache
from lwm2m_server.coap.stats import CoapStats
from lwm2m_server.coap.turns import PeerTurns
from lwm2m_server.events import EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.codecs import CodecError, ContentFormat, decode, decode_root, encode, encode_root
from lwm2m_server.protocol.composite import PATH_LIST_FORMATS, encode_paths
from lwm2m_server.protocol.jsonvalues import content_to_json
from lwm2m_server.protocol.linkformat import Link, LinkFormatError, parse_link_format
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.negotiation import choose_composite_answer, choose_composite_format, choose_format
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.queue import QueuedRequest, QueueManager
from lwm2m_server.registration import Registration
from lwm2m_server.registry import Registry

log = get_logger(__name__)

__all__ = [
    "BadResponse",
    "DeviceClient",
    "DeviceError",
    "DeviceNotRegistered",
    "DeviceTimeout",
    "Observation",
    "RawResponse",
    "jsonable",
]


jsonable = content_to_json  # kept for callers of the old name: the API's JSON value encoding


def _attr_query(attributes: Mapping[str, float | int | None]) -> tuple[str, ...]:
    out = []
    for name, value in attributes.items():
        if value is None:
            out.append(name)  # a valueless attribute removes it (LwM2M 1.1 §5.1.2)
        elif isinstance(value, bool):
            raise ValueError(f"attribute {name} must be a number")
        else:
            out.append(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}")
    return tuple(out)


class DeviceClient(CompositeObserveOperations):
    def __init__(
        self,
        registry: Registry,
        events: EventBus,
        queue: QueueManager | None = None,
        *,
        model: ObjectRegistry | None = None,
        default_timeout: float = 30.0,
        sessions: SecureSessions | None = None,
        fast: FastClient | None = None,
        turns: PeerTurns | None = None,
        notifications: FastNotifications | None = None,
    ) -> None:
        """``sessions``: the coaps listener's established sessions; devices registered over DTLS are reached
        through them (None: plain CoAP only). ``fast``: the fast-path client that carries Block1 requests to
        plain-CoAP devices once the listener connected it (None or not connected: aiocoap carries them).
        ``turns``: NSTART per device across aiocoap and the fast client (default: ``fast``'s, else none).
        ``notifications``: the fast path's notification matcher; plain observations are listed there, so their
        notifications skip aiocoap (None: aiocoap delivers them)."""
        self.registry = registry
        self.notifications = notifications
        self.fast = fast
        self.turns = turns if turns is not None else fast.turns if fast is not None else None
        self.sessions = sessions
        self.events = events
        self.queue = queue
        self.model = model or ObjectRegistry.default()
        self.default_timeout = default_timeout
        self.context: aiocoap.Context | None = None
        self._remotes: tuple[aiocoap.Context, RemoteCache] | None = None
        self.stats = CoapStats()
        self._observations: dict[str, list[Observation]] = {}  # every owner's handles
        self._shared: dict[str, dict[tuple[LwM2MPath, int], SharedObservation]] = {}  # CoAP observations
        self._starting: dict[tuple[str, tuple[LwM2MPath, int]], asyncio.Future[None]] = {}
        self._composites: dict[str, list[CompositeObservation]] = {}  # Observe-Composite handles
        self._completing: set[asyncio.Task[None]] = set()  # notifications in blocks being completed
        registry.add_hook(self._on_registration)

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _ctx(self) -> aiocoap.Context:
        if self.context is None:
            raise RuntimeError("DeviceClient has no CoAP context (server not started)")
        return self.context

    def _reg(self, endpoint: str) -> Registration:
        reg = self.registry.get(endpoint)
        if reg is None:
            raise DeviceNotRegistered(endpoint)
        return reg

    def _remote_cache(self, ctx: aiocoap.Context) -> RemoteCache:
        """Resolved device addresses for this context (a new context, e.g. after a restart, starts afresh)."""
        if self._remotes is None or self._remotes[0] is not ctx:
            self._remotes = (ctx, RemoteCache(ctx))
        return self._remotes[1]
    def _remote(self, reg: Registration) -> Any:
        """A device registered over coaps is reached over its own DTLS session; any other at its plain address,
        resolved once per address (:mod:`lwm2m_server.coap.remotes`)."""
        if reg.security != "none":
            session = self.sessions.get(reg.host, reg.port) if self.sessions is not None else None
            if session is None:
                raise DeviceError("network", "no DTLS session with the device (it must send an Update first)",
                                  endpoint=reg.endpoint)
            return session
        return self._remote_cache(self._ctx()).remote(reg.host, reg.port)

    async def send_now(self, reg: Registration, spec: RequestSpec, timeout: float) -> RawResponse:
        """Send immediately, bypassing queue mode (the queue's sender); every outcome is counted."""
        fast = self.fast
        try:
            if spec.block1 is not None and fast is not None and fast.connected and reg.security == "none":
                resp = await send_fast(fast, reg, spec, timeout)
            else:
                resp = await send(self._ctx(), reg, spec, timeout, remote=self._remote(reg), turns=self.turns)
        except DeviceError as exc:
            self.stats.count_out(spec.method, exc.coap_code)
            raise
        self.stats.count_out(spec.method, resp.code)
        return resp

    async def send_unregistered(self, remote: Any, spec: RequestSpec, endpoint: str,
                                timeout: float | None = None) -> RawResponse:
        """A request to a device before it registers (bootstrap), over the remote (address or DTLS session) its
        own request came from; counted like every other request."""
        t = timeout if timeout is not None else self.default_timeout
        try:
            resp = await send_to_remote(self._ctx(), remote, spec, t, endpoint, turns=self.turns)
        except DeviceError as exc:
            self.stats.count_out(spec.method, exc.coap_code)
            raise
        self.stats.count_out(spec.method, resp.code)
        return resp

    async def _request(self, reg: Registration, spec: RequestSpec, timeout: float | None) -> RawResponse:
        t = timeout if timeout is not None else self.default_timeout
        if self.queue is None:
            return await self.send_now(reg, spec, t)
        return await self.queue.request(reg, spec, t)

    @staticmethod
    def _check(reg: Registration, resp: RawResponse, what: str, expected: tuple[str, ...] = ()) -> None:
        if not resp.success or (expected and resp.code not in expected):
            msg = resp.payload[:200].decode("utf-8", "replace") if resp.payload else what
            raise DeviceError(resp.code, msg, endpoint=reg.endpoint)

    def _decode(self, reg: Registration, path: LwM2MPath, resp: RawResponse, asked: int) -> Content:
        cf = resp.content_format if resp.content_format is not None else asked
        if not resp.payload:
            return {}
        try:
            return decode(cf, path, resp.payload, self.model)
        except CodecError as exc:
            raise BadResponse(
                f"{path}: cannot decode format {cf}: {exc}", endpoint=reg.endpoint, content_format=cf
            ) from exc

    def _format(self, reg: Registration, path: LwM2MPath, *, for_write: bool = False) -> int:
        return choose_format(path, reg.lwm2m_version, reg.content_formats, self.model, for_write=for_write)

    def negotiated_format(self, endpoint: str, path: LwM2MPath | str, *, for_write: bool = False) -> int:
        """The Content-Format operations on ``path`` use by default (Accept for reads)."""
        return self._format(self._reg(endpoint), as_path(path), for_write=for_write)

    # -- operations -------------------------------------------------------------------------------------------
    async def read(
        self, endpoint: str, path: LwM2MPath | str, *, content_format: int | None = None, timeout: float | None = None
    ) -> Content:
        reg, p = self._reg(endpoint), as_path(path)
        cf = content_format if content_format is not None else self._format(reg, p)
        resp = await self._request(reg, RequestSpec("GET", str(p), accept=cf), timeout)
        self._check(reg, resp, f"read {p}")
        return self._decode(reg, p, resp, cf)

    async def discover(self, endpoint: str, path: LwM2MPath | str, *, timeout: float | None = None) -> list[Link]:
        reg, p = self._reg(endpoint), as_path(path)
        resp = await self._request(reg, RequestSpec("GET", str(p), accept=ContentFormat.LINK), timeout)
        self._check(reg, resp, f"discover {p}")
        try:
            return parse_link_format(resp.payload.decode("utf-8"))
        except (UnicodeDecodeError, LinkFormatError) as exc:
            raise BadResponse(f"discover {p}: {exc}", endpoint=endpoint, content_format=resp.content_format) from exc

    async def write(
        self,
        endpoint: str,
        path: LwM2MPath | str,
        content: Content,
        *,
        partial: bool = False,
        content_format: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """Replace (PUT) or, with ``partial``, update (POST) ``path`` with ``content``."""
        reg, p = self._reg(endpoint), as_path(path)
        cf = content_format if content_format is not None else self._format(reg, p, for_write=True)
        payload = encode(cf, p, content, self.model)
        spec = RequestSpec("POST" if partial else "PUT", str(p), payload, content_format=cf)
        self._check(reg, await self._request(reg, spec, timeout), f"write {p}")

    async def write_attributes(
        self,
        endpoint: str,
        path: LwM2MPath | str,
        attributes: Mapping[str, float | int | None],
        *,
        timeout: float | None = None,
    ) -> None:
        reg, p = self._reg(endpoint), as_path(path)
        spec = RequestSpec("PUT", str(p), query=_attr_query(attributes))
        self._check(reg, await self._request(reg, spec, timeout), f"write-attributes {p}")

    async def execute(
        self, endpoint: str, path: LwM2MPath | str, arguments: str = "", *, timeout: float | None = None
    ) -> None:
        reg, p = self._reg(endpoint), as_path(path)
        spec = RequestSpec("POST", str(p), arguments.encode("utf-8"))
        self._check(reg, await self._request(reg, spec, timeout), f"execute {p}")

    async def create(
        self,
        endpoint: str,
        object_path: LwM2MPath | str,
        content: Content,
        *,
        content_format: int | None = None,
        timeout: float | None = None,
    ) -> LwM2MPath:
        """Create an object instance; returns its path (from Location-Path, else from the content)."""
        reg, p = self._reg(endpoint), as_path(object_path)
        cf = content_format if content_format is not None else self._format(reg, p, for_write=True)
        spec = RequestSpec("POST", str(p), encode(cf, p, content, self.model), content_format=cf)
        resp = await self._request(reg, spec, timeout)
        self._check(reg, resp, f"create {p}", ("2.01",))
        segs = [s for s in resp.location_path if s]
        if len(segs) >= 2 and segs[-1].isdigit() and segs[-2].isdigit():
            return LwM2MPath(int(segs[-2]), int(segs[-1]))
        instances = {k.object_instance for k in content if k.object_instance is not None}
        if len(instances) == 1:
            return LwM2MPath(p.object_id, instances.pop())
        raise BadResponse(f"create {p}: 2.01 without a Location-Path naming the instance", endpoint=endpoint)

    async def delete(self, endpoint: str, path: LwM2MPath | str, *, timeout: float | None = None) -> None:
        reg, p = self._reg(endpoint), as_path(path)
        self._check(reg, await self._request(reg, RequestSpec("DELETE", str(p)), timeout), f"delete {p}")

    def _composite_format(self, reg: Registration, what: str) -> int:
        cf = choose_composite_format(reg.content_formats, PATH_LIST_FORMATS)
        if cf is None:
            raise DeviceError("unsupported", f"{what} needs a client that announced SenML", endpoint=reg.endpoint)
        return cf

    def _decode_root(self, reg: Registration, resp: RawResponse, asked: int, what: str) -> Content:
        cf = resp.content_format if resp.content_format is not None else asked
        try:
            return decode_root(cf, resp.payload, self.model) if resp.payload else {}
        except CodecError as exc:
            raise BadResponse(f"{what}: {exc}", endpoint=reg.endpoint, content_format=cf) from exc

    async def read_composite(
        self, endpoint: str, paths: Sequence[LwM2MPath | str], *, timeout: float | None = None
    ) -> Content:
        """FETCH several paths at once (LwM2M 1.1); needs SenML-CBOR or SenML-JSON in the registration's ``ct=``."""
        reg = self._reg(endpoint)
        cf = self._composite_format(reg, "read-composite")
        ps = [as_path(p) for p in paths]
        accept = choose_composite_answer(reg.lwm2m_version, reg.content_formats, cf)
        spec = RequestSpec("FETCH", "/", encode_paths(cf, ps), content_format=cf, accept=accept)
        resp = await self._request(reg, spec, timeout)
        self._check(reg, resp, "read-composite")
        return self._decode_root(reg, resp, accept, "read-composite")

    async def write_composite(self, endpoint: str, content: Content, *, timeout: float | None = None) -> None:
        """iPATCH ``/`` with values for resources of several objects at once (LwM2M 1.1 Write-Composite)."""
        reg = self._reg(endpoint)
        path_list_format = self._composite_format(reg, "write-composite")
        cf = choose_composite_answer(reg.lwm2m_version, reg.content_formats, path_list_format)
        spec = RequestSpec("IPATCH", "/", encode_root(cf, content, self.model), content_format=cf)
        self._check(reg, await self._request(reg, spec, timeout), "write-composite", ("2.04",))

    async def raw_request(
        self,
        endpoint: str,
        method: str,
        path: str,
        payload: bytes = b"",
        *,
        content_format: int | None = None,
        accept: int | None = None,
        block1: tuple[int, int, bool] | None = None,
        size1: int | None = None,
        query: Sequence[str] = (),
        timeout: float | None = None,
    ) -> RawResponse:
        """Any request, any answer (no code check); through the queue-mode FIFO. ``block1`` = (num, szx, more)."""
        reg = self._reg(endpoint)
        spec = RequestSpec(method.upper(), path, payload, tuple(query), content_format, accept, block1, size1)
        return await self._request(reg, spec, timeout)

    async def submit(
        self,
        endpoint: str,
        method: str,
        path: str,
        payload: bytes = b"",
        *,
        content_format: int | None = None,
        accept: int | None = None,
        timeout: float | None = None,
    ) -> QueuedRequest:
        """Queue a request (persisted) and return its handle at once; ``await handle.result()`` for the answer."""
        if self.queue is None:
            raise RuntimeError("no queue manager")
        reg = self._reg(endpoint)
        spec = RequestSpec(method.upper(), path, payload, (), content_format, accept)
        return await self.queue.enqueue(reg, spec, timeout if timeout is not None else self.default_timeout)
