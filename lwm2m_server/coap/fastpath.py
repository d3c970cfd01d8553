"""The CoAP fast path: the hot CON requests answered straight from the datagram, before aiocoap sees them.

aiocoap spends ~300 µs per request in its message, token and resource layers (futures, pipes, a task per
request, a deep-copied message per response). The hot LwM2M traffic is simple: one CON datagram in, one
piggybacked ACK out. :class:`FastPathUDP6` is aiocoap's own udp6 message interface with one change: each
datagram is first offered to a :class:`FastPath`, which decodes it with the sans-IO codec
(:mod:`lwm2m_server.protocol.coapmsg`) and hands it to the :class:`FastHandler` of its first path segment:

* ``rd`` — :class:`RegistrationFastHandler`: CON ``POST /rd``, ``POST /rd/<id>``, ``DELETE /rd/<id>`` through
  the same :class:`RegistrationInterface` the aiocoap resources use;
* ``fw`` — the firmware resource's stateless Block2 serving (:mod:`lwm2m_server.coap.firmware_resource`).

A handler answers only requests carrying options it declares (besides Uri-Path and Uri-Query). ACKs, RSTs and
responses to the server's own fast requests (:mod:`lwm2m_server.coap.fast_client`: the Block1 push) are matched
by its :class:`FastClient` first; notifications of the server's plain observations by its
:class:`~lwm2m_server.coap.fast_notifications.FastNotifications` next. Everything else (responses to aiocoap's
requests, NON, Block1, other options or resources, anything unparsable) goes on to aiocoap unchanged, on the
same socket. The socket is read by :class:`~lwm2m_server.coap.fastpath_transport.BatchedRecvmsgTransport`.

CoAP rules kept here: the response is piggybacked on the ACK (same message id and token); a duplicate of a
request already answered gets the cached response again for EXCHANGE_LIFETIME (RFC 7252 §4.5), and a duplicate
of one still in progress is dropped (the client retransmits). The handler runs eagerly in the datagram callback;
only if it suspends (it normally does not: store writes are queued, packages are in memory) does the rest
continue in a task. A handler that raises is answered 5.00, as aiocoap does.
"""

from __future__ import annotations

import asyncio
import socket
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from sys import intern
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from aiocoap.transports.udp6 import MessageInterfaceUDP6
from aiocoap.util import socknumbers

from lwm2m_server.coap.fast_client import FastClient
from lwm2m_server.coap.fastpath_transport import create_batched_endpoint
from lwm2m_server.coap.messages import PeerMessageManager
from lwm2m_server.coap.registration_interface import RegistrationInterface
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol import coapmsg as m

if TYPE_CHECKING:
    from lwm2m_server.coap.fast_notifications import FastNotifications

log = get_logger(__name__)

_METHOD = {m.GET: "GET", m.POST: "POST", m.DELETE: "DELETE"}
INTERNAL_ERROR = 0xA0  # 5.00
_IN_PROGRESS = b""  # a cached response is never empty (an ACK is at least 4 bytes)

Address = tuple[Any, ...]
Send = Callable[[bytes, Address, list[tuple[int, int, bytes]]], None]


class FastAnswer(NamedTuple):
    code: int  # e.g. 0x41 for 2.01
    options: tuple[tuple[int, bytes], ...] = ()
    payload: bytes = b""


@runtime_checkable
class FastHandler(Protocol):
    """A resource that can answer some CON requests below its first path segment straight from the datagram.

    ``fast_options``: option numbers it understands besides Uri-Path and Uri-Query (a request with any other
    goes to aiocoap); ``fast_accepts`` says whether this request is one of those it answers here."""

    fast_options: frozenset[int]

    def fast_accepts(self, msg: m.CoapMessage, path: list[str]) -> bool: ...

    def fast_answer(self, msg: m.CoapMessage, path: list[str], query: list[str],
                    peer: tuple[str, int]) -> Awaitable[FastAnswer]: ...  # fmt: skip


DedupKey = tuple[str, int]  # (interned peer host, port << 16 | message id): ~90 bytes a remembered request


def dedup_key(address: Address, mid: int) -> DedupKey:
    return (intern(address[0]), address[1] << 16 | mid)


class Dedup:
    """Responses by (peer address, message id), remembered for at least ``lifetime`` seconds.

    Expiry is kept per ``BUCKET_S`` of arrival, not per request: a storm remembers 100k requests at once, and a
    (deadline, key) pair each cost ~80 bytes a device on top of the ~150 the entry itself takes."""

    BUCKET_S = 1.0

    def __init__(self, lifetime: float = m.EXCHANGE_LIFETIME, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._responses: dict[DedupKey, bytes] = {}
        self._order: deque[tuple[float, list[DedupKey]]] = deque()  # (expiry of the bucket, its keys)

    def get(self, key: DedupKey) -> bytes | None:
        return self._responses.get(key)

    def begin(self, key: DedupKey) -> None:
        now = self._clock()
        order = self._order
        while order and order[0][0] <= now:
            pop = self._responses.pop
            for old in order.popleft()[1]:
                pop(old, None)
        self._responses[key] = _IN_PROGRESS
        if order and order[-1][0] - self.lifetime > now:  # the newest bucket expires BUCKET_S after it opened
            order[-1][1].append(key)
        else:
            order.append((now + self.BUCKET_S + self.lifetime, [key]))

    def complete(self, key: DedupKey, response: bytes) -> None:
        if key in self._responses:
            self._responses[key] = response

    def __len__(self) -> int:
        return len(self._responses)


def plain_host(address: Address) -> tuple[str, int]:
    """(host, port) with a v4-mapped IPv6 address shown as IPv4, as :func:`lwm2m_server.coap.rd.peer_address`."""
    host = address[0]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, address[1]


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], yielded: Any) -> Generator[Any, Any, None]:
    """Continue a coroutine that was started by hand and suspended on ``yielded``, inside a task."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:  # thrown in by the task (cancellation): pass it on
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration:
                return


class RegistrationFastHandler:
    """``POST /rd``, ``POST /rd/<id>``, ``DELETE /rd/<id>`` (non-empty id) through the RegistrationInterface."""

    fast_options = frozenset({m.CONTENT_FORMAT})

    def __init__(self, rd: RegistrationInterface) -> None:
        self.rd = rd

    def fast_accepts(self, msg: m.CoapMessage, path: list[str]) -> bool:
        if len(path) == 1:
            return msg.code == m.POST
        return len(path) == 2 and bool(path[1]) and msg.code in (m.POST, m.DELETE)

    async def fast_answer(self, msg: m.CoapMessage, path: list[str], query: list[str],
                          peer: tuple[str, int]) -> FastAnswer:  # fmt: skip
        host, port = peer
        if len(path) == 1:
            reply = await self.rd.register(query, msg.payload, host, port)
        elif msg.code == m.POST:
            reply = await self.rd.update(path[1], query, msg.payload, host, port)
        else:
            reply = await self.rd.deregister(path[1], host, port)
        self.rd.count_code(_METHOD[msg.code], reply.code)
        opts = tuple((m.LOCATION_PATH, seg.encode()) for seg in reply.location)
        return FastAnswer(m.code_number(reply.code), opts, reply.payload)


class FastPath:
    """Offers each datagram to the handler of its first Uri-Path segment; dedup and answering are here."""

    def __init__(self, handlers: dict[str, FastHandler] | None = None, dedup: Dedup | None = None,
                 client: FastClient | None = None, notifications: FastNotifications | None = None
                 ) -> None:  # fmt: skip
        """``client``: the server's own fast CON requests (Block1 push), sent and matched on this socket;
        ``notifications``: the server's observations whose notifications are taken here."""
        self._handlers: dict[str, FastHandler] = dict(handlers or {})
        self.client = client
        self.notifications = notifications
        self.dedup = dedup or Dedup()
        self.handled = 0
        self.duplicates = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def add_handler(self, segment: str, handler: FastHandler) -> None:
        """Route CON requests below ``/<segment>`` to ``handler`` (before the server starts)."""
        self._handlers[segment] = handler

    def offer(self, data: bytes, address: Address, ancdata: list[tuple[int, int, bytes]], send: Send) -> bool:
        """Handle the datagram (True) or leave it to aiocoap (False)."""
        if len(data) < 6 or data[0] & 0xF0 != 0x40 or data[1] not in _METHOD:  # CON GET/POST/DELETE only
            return False
        try:
            msg = m.decode(data)
        except m.CoapFormatError:
            return False
        opts = msg.options
        if not opts or opts[0][0] != m.URI_PATH:
            return False
        handler = self._handlers.get(opts[0][1].decode("utf-8", "replace"))
        if handler is None:
            return False
        allowed = handler.fast_options
        path: list[str] = []
        query: list[str] = []
        try:
            for number, value in opts:
                if number == m.URI_PATH:
                    path.append(value.decode("utf-8"))
                elif number == m.URI_QUERY:
                    query.append(value.decode("utf-8"))
                elif number not in allowed:
                    return False
        except UnicodeDecodeError:
            return False
        if not handler.fast_accepts(msg, path):
            return False
        key = dedup_key(address, msg.mid)
        cached = self.dedup.get(key)
        if cached is not None:
            self.duplicates += 1
            if cached:
                send(cached, address, ancdata)
            return True
        self.dedup.begin(key)
        self.handled += 1
        self._drive(self._answer(handler, msg, path, query, address, ancdata, send))
        return True

    async def _answer(self, handler: FastHandler, msg: m.CoapMessage, path: list[str], query: list[str],
                      address: Address, ancdata: list[tuple[int, int, bytes]], send: Send) -> None:  # fmt: skip
        peer = plain_host(address)
        try:
            answer = await handler.fast_answer(msg, path, query, peer)
        except Exception:
            log.exception("fastpath_handler_failed", path="/".join(path), peer=f"{peer[0]}:{peer[1]}")
            answer = FastAnswer(INTERNAL_ERROR)
        data = m.piggybacked(msg, answer.code, answer.options, answer.payload)
        self.dedup.complete(dedup_key(address, msg.mid), data)
        send(data, address, ancdata)

    def _drive(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            yielded = coro.send(None)
        except StopIteration:
            return  # answered synchronously: the usual case
        task = asyncio.ensure_future(_resume(coro, yielded))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class FastPathUDP6(MessageInterfaceUDP6):
    """aiocoap's udp6 message interface with the registration fast path in front of its dispatch."""

    def __init__(self, ctx: Any, log: Any, loop: asyncio.AbstractEventLoop, *, fast: FastPath) -> None:
        super().__init__(ctx, log, loop)
        self._fast = fast

    @classmethod
    async def create(cls, sock: socket.socket, mman: PeerMessageManager, fast: FastPath, log: Any,
                     loop: asyncio.AbstractEventLoop) -> FastPathUDP6:  # fmt: skip
        """aiocoap's ``_create_transport_endpoint`` (PKTINFO and RECVERR socket options, no multicast) with this
        class on the batched recvmsg transport."""
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        if socknumbers.HAS_RECVERR:
            sock.setsockopt(socket.IPPROTO_IPV6, socknumbers.IPV6_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IP, socknumbers.IP_RECVERR, 1)
        protocol = cls(mman, log, loop, fast=fast)
        transport = await create_batched_endpoint(loop, protocol, sock)
        await protocol.ready
        if fast.client is not None:
            fast.client.connect(lambda data, address: transport.sendmsg(data, [], 0, address),
                                mman.next_id_for, mman.token_manager.next_token, loop)  # fmt: skip
        return protocol

    def connection_lost(self, exc: Exception | None) -> None:
        if self._fast.client is not None:
            self._fast.client.disconnect()
        super().connection_lost(exc)

    def datagram_msg_received(self, data: bytes, ancdata: list[tuple[int, int, bytes]], flags: int,
                              address: Address) -> bool:  # fmt: skip
        """True when the fast path took the datagram; False when it went on to aiocoap (the batched transport
        then ends its wake-up, see :mod:`lwm2m_server.coap.fastpath_transport`)."""
        client = self._fast.client
        if client is not None and client.offer(data, address):
            return True
        notifications = self._fast.notifications
        if notifications is not None and notifications.offer(data, address, ancdata, self._send_raw):
            return True
        if self._fast.offer(data, address, ancdata, self._send_raw):
            return True
        super().datagram_msg_received(data, ancdata, flags, address)
        return False

    def datagram_errqueue_received(self, data: bytes, ancdata: list[tuple[int, int, bytes]], flags: int,
                                   address: Address) -> None:  # fmt: skip
        """An ICMP error (port unreachable: the device is gone): aiocoap fails its exchanges with the address,
        and the observations that are the fast path's alone end too."""
        super().datagram_errqueue_received(data, ancdata, flags, address)
        notifications = self._fast.notifications
        if notifications is not None:
            notifications.unreachable(address, OSError("ICMP error for the device's address (unreachable)"))

    def _send_raw(self, data: bytes, address: Address, ancdata: list[tuple[int, int, bytes]]) -> None:
        pktinfo = [a for a in ancdata if a[0] == socket.IPPROTO_IPV6 and a[1] == socket.IPV6_PKTINFO]
        self.transport.sendmsg(data, pktinfo, 0, address)
