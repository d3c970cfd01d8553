"""One server→device CoAP exchange: a persistable request description, its response, and the send itself.

Requests go out of the server's own aiocoap context, i.e. from the same UDP socket the device registered with,
so NAT bindings hold. A request is addressed by the registration's current ``host:port`` and root path; a device
that registered over DTLS by its session's remote instead (the caller passes it: a DTLS server cannot open one).
A request to a plain-CoAP device holds the device's turn in the :class:`~lwm2m_server.coap.turns.PeerTurns`
it is given, shared with the fast client on the same socket (NSTART across both stacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.error
from aiocoap.message import UndecidedRemote
from aiocoap.numbers.codes import Code
from aiocoap.optiontypes import BlockOption
from aiocoap.transports.udp6 import UDP6EndpointAddress
from aiocoap.util import hostportjoin

from lwm2m_server.coap.errors import DeviceError, DeviceTimeout
from lwm2m_server.coap.turns import Peer, PeerTurns, covering, socket_peer
from lwm2m_server.registration import Registration

METHODS = {
    "GET": Code.GET,
    "POST": Code.POST,
    "PUT": Code.PUT,
    "DELETE": Code.DELETE,
    "FETCH": Code.FETCH,
    "PATCH": Code.PATCH,
    "IPATCH": Code.iPATCH,
}


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """Everything needed to (re)send a request, also after a restart (see :mod:`lwm2m_server.queue`)."""

    method: str
    path: str
    payload: bytes = b""
    query: tuple[str, ...] = ()
    content_format: int | None = None
    accept: int | None = None
    block1: tuple[int, int, bool] | None = None  # (num, szx, more)
    size1: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "method": self.method,
                "path": self.path,
                "query": list(self.query),
                "content_format": self.content_format,
                "accept": self.accept,
                "block1": list(self.block1) if self.block1 else None,
                "size1": self.size1,
            }
        )

    @classmethod
    def from_json(cls, text: str, payload: bytes) -> RequestSpec:
        d = json.loads(text)
        b1 = d.get("block1")
        return cls(
            d["method"],
            d["path"],
            payload,
            tuple(d.get("query") or ()),
            d.get("content_format"),
            d.get("accept"),
            (int(b1[0]), int(b1[1]), bool(b1[2])) if b1 else None,
            d.get("size1"),
        )


@dataclass(frozen=True, slots=True)
class RawResponse:
    code: str
    payload: bytes = b""
    content_format: int | None = None
    location_path: tuple[str, ...] = ()
    block1: tuple[int, int, bool] | None = None
    block2: tuple[int, int, bool] | None = None
    size1: int | None = None
    etag: bytes | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.code.startswith("2.")

    @classmethod
    def from_message(cls, msg: aiocoap.Message) -> RawResponse:
        opt = msg.opt

        def blk(b: Any) -> tuple[int, int, bool] | None:
            return None if b is None else (b.block_number, b.size_exponent, bool(b.more))

        cf = opt.content_format
        return cls(
            code=code_str(msg.code),
            payload=bytes(msg.payload),
            content_format=int(cf) if cf is not None else None,
            location_path=tuple(opt.location_path),
            block1=blk(opt.block1),
            block2=blk(opt.block2),
            size1=opt.size1,
            etag=opt.etag,
            options={"max_age": opt.max_age, "observe": opt.observe},
        )


def code_str(code: Code | int) -> str:
    c = int(code)
    return f"{c >> 5}.{c & 0x1F:02d}"


def uri_path(reg: Registration, path: str) -> tuple[str, ...]:
    root = tuple(p for p in reg.root_path.split("/") if p)
    return root + tuple(p for p in path.split("/") if p)


def build_message(
    reg: Registration, spec: RequestSpec, *, observe: int | None = None, remote: Any = None
) -> aiocoap.Message:
    try:
        code = METHODS[spec.method.upper()]
    except KeyError:
        raise ValueError(f"unknown CoAP method {spec.method!r}") from None
    msg = aiocoap.Message(code=code, payload=spec.payload, uri_path=uri_path(reg, spec.path))
    if spec.query:
        msg.opt.uri_query = spec.query
    if spec.content_format is not None:
        msg.opt.content_format = spec.content_format
    if spec.accept is not None:
        msg.opt.accept = spec.accept
    if spec.block1 is not None:
        num, szx, more = spec.block1
        msg.opt.block1 = BlockOption.BlockwiseTuple(num, more, szx)
    if spec.size1 is not None:
        msg.opt.size1 = spec.size1
    if observe is not None:
        msg.opt.observe = observe
    msg.remote = remote if remote is not None else UndecidedRemote("coap", hostportjoin(reg.host, reg.port))
    return msg


def abandon(ctx: aiocoap.Context, msg: aiocoap.Message) -> None:
    """Stop retransmitting the confirmable request ``msg`` once nobody waits for its response.

    aiocoap 0.4 keeps retransmitting a CON after its response future is cancelled (chrysn/aiocoap#363), and with
    NSTART=1 every later request to the same device waits behind it for up to MAX_TRANSMIT_WAIT (93 s): one
    request the device dropped made the following ones time out as well. This reaches into the message layer
    defensively; should its internals change, it does nothing (the library's own behaviour).
    """
    if msg.mid is None or msg.remote is None:
        return
    key = (msg.remote, msg.mid)
    for interface in getattr(ctx, "request_interfaces", ()):
        manager = getattr(interface, "token_interface", None)
        exchanges = getattr(manager, "_active_exchanges", None)
        backlogs = getattr(manager, "_backlogs", None)
        if not isinstance(exchanges, dict) or not isinstance(backlogs, dict):
            continue
        waiting = backlogs.get(msg.remote)
        if isinstance(waiting, list):  # not sent yet (queued behind another exchange): never send it
            waiting[:] = [item for item in waiting if item[0] is not msg]
        if key in exchanges:
            _monitor, retransmission = exchanges.pop(key)
            retransmission.cancel()
            with contextlib.suppress(AttributeError, AssertionError, KeyError):
                manager._continue_backlog(msg.remote)  # type: ignore[union-attr]  # send what queued behind it


@contextlib.asynccontextmanager
async def turn(turns: PeerTurns | None, reg: Registration, timeout: float, what: str) -> AsyncIterator[float]:
    """Hold the device's turn for one request to it, waited for within ``timeout`` (as aiocoap's own backlog
    wait counts in it); yields the time left for the request. Nothing to wait for over DTLS or without
    ``turns``. Raises :class:`DeviceTimeout` when the turn did not come in time."""
    if turns is None or reg.security != "none":
        yield timeout
        return
    async with peer_turn(turns, socket_peer(reg.host, reg.port), timeout, what, reg.endpoint) as left:
        yield left


@contextlib.asynccontextmanager
async def peer_turn(turns: PeerTurns, peer: Peer, timeout: float, what: str, endpoint: str) -> AsyncIterator[float]:
    """:func:`turn` for a socket peer ``(host, port)``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        async with asyncio.timeout(timeout):
            await turns.acquire(peer)
    except TimeoutError:
        raise DeviceTimeout(f"{what}: no response in {timeout:g}s (another request to the device was outstanding)",
                            endpoint=endpoint) from None  # fmt: skip
    try:
        with covering(peer):
            yield max(0.0, timeout - (loop.time() - start))
    finally:
        turns.release(peer)


async def send(
    ctx: aiocoap.Context, reg: Registration, spec: RequestSpec, timeout: float, *, remote: Any = None,
    turns: PeerTurns | None = None,
) -> RawResponse:
    """Send and await the response; raises :class:`DeviceTimeout` / :class:`DeviceError` on transport failure.
    ``remote``: the device's already resolved address or DTLS session (see ``DeviceClient._remote``), if known.
    ``turns``: NSTART shared with the fast client; the request waits for the device's turn and holds it."""
    async with turn(turns, reg, timeout, f"{spec.method} {spec.path}") as left:
        return await _exchange(ctx, build_message(reg, spec, remote=remote), spec, left, reg.endpoint)


async def send_to_remote(ctx: aiocoap.Context, remote: Any, spec: RequestSpec, timeout: float,
                         endpoint: str, *, turns: PeerTurns | None = None) -> RawResponse:  # fmt: skip
    """Send to a device that is not registered (bootstrap) over the remote its own request came from (its plain
    address or its DTLS session), at the device's root path. ``turns``: as for :func:`send`, for a plain
    address (a DTLS session's CONs are all aiocoap's, kept to NSTART by its backlog)."""
    msg = build_message(_UNREGISTERED, spec, remote=remote)
    if turns is None or not isinstance(remote, UDP6EndpointAddress):
        return await _exchange(ctx, msg, spec, timeout, endpoint)
    peer = (remote.sockaddr[0], remote.sockaddr[1])
    async with peer_turn(turns, peer, timeout, f"{spec.method} {spec.path}", endpoint) as left:
        return await _exchange(ctx, msg, spec, left, endpoint)


_UNREGISTERED = Registration("", "", "", 0, 0, "1.1", "U", False)


async def _exchange(ctx: aiocoap.Context, msg: aiocoap.Message, spec: RequestSpec, timeout: float,
                    endpoint: str) -> RawResponse:
    request = ctx.request(msg, handle_blockwise=spec.block1 is None)
    try:
        response = await asyncio.wait_for(request.response, timeout)
    except asyncio.CancelledError:
        abandon(ctx, msg)
        raise
    except (TimeoutError, aiocoap.error.TimeoutError) as exc:
        abandon(ctx, msg)
        raise DeviceTimeout(f"{spec.method} {spec.path}: no response in {timeout:g}s", endpoint=endpoint) from exc
    except aiocoap.error.Error as exc:
        raise DeviceError("network", f"{spec.method} {spec.path}: {exc}", endpoint=endpoint) from exc
    return RawResponse.from_message(response)
