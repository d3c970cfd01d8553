"""The registration fast path: plain CON Register / Update / De-register answered straight from the datagram.

aiocoap spends ~300 µs per request in its message, token and resource layers (futures, pipes, a task per
request, a deep-copied message per response). The hot LwM2M traffic is simple: one CON datagram in, one
piggybacked ACK out. :class:`FastPathUDP6` is aiocoap's own udp6 message interface with one change: each
datagram is first offered to a :class:`RegistrationFastPath`, which decodes it with the sans-IO codec
(:mod:`lwm2m_server.protocol.coapmsg`) and, if it is a CON ``POST /rd``, ``POST /rd/<id>`` or
``DELETE /rd/<id>`` carrying only Uri-Path, Uri-Query and Content-Format, answers it through the same
:class:`RegistrationInterface` the aiocoap resources use. Everything else (responses to the server's own
requests, NON, Block1, any other option or resource, anything unparsable) goes on to aiocoap unchanged, on the
same socket: CON retransmission, NSTART and token matching of our requests stay aiocoap's. The socket is read by
:class:`~lwm2m_server.coap.fastpath_transport.BatchedRecvmsgTransport` (many datagrams per wake-up).

CoAP rules kept here: the response is piggybacked on the ACK (same message id and token); a duplicate of a
request already answered gets the cached response again for EXCHANGE_LIFETIME (RFC 7252 §4.5), and a duplicate
of one still in progress is dropped (the client retransmits). The handler runs eagerly in the datagram callback;
only if it suspends (it normally does not: store writes are queued) does the rest continue in a task.
"""

from __future__ import annotations

import asyncio
import socket
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from sys import intern
from typing import Any

from aiocoap.transports.udp6 import MessageInterfaceUDP6
from aiocoap.util import socknumbers

from lwm2m_server.coap.fastpath_transport import create_batched_endpoint
from lwm2m_server.coap.registration_interface import RegistrationInterface, Reply
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol import coapmsg as m

log = get_logger(__name__)

FAST_OPTIONS = frozenset({m.URI_PATH, m.CONTENT_FORMAT, m.URI_QUERY})
_RD = b"rd"
_METHOD = {m.POST: "POST", m.DELETE: "DELETE"}
_CODE = {"2.01": 0x41, "2.02": 0x42, "2.04": 0x44, "4.00": 0x80, "4.04": 0x84, "4.12": 0x8C}
INTERNAL_ERROR = "5.00"
_IN_PROGRESS = b""  # a cached response is never empty (an ACK is at least 4 bytes)

Address = tuple[Any, ...]
Send = Callable[[bytes, Address, list[tuple[int, int, bytes]]], None]


DedupKey = tuple[str, int]  # (interned peer host, port << 16 | message id): ~90 bytes a remembered request


def dedup_key(address: Address, mid: int) -> DedupKey:
    return (intern(address[0]), address[1] << 16 | mid)


class Dedup:
    """Responses by (peer address, message id), remembered for ``lifetime`` seconds."""

    def __init__(self, lifetime: float = m.EXCHANGE_LIFETIME, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._responses: dict[DedupKey, bytes] = {}
        self._order: deque[tuple[float, DedupKey]] = deque()

    def get(self, key: DedupKey) -> bytes | None:
        return self._responses.get(key)

    def begin(self, key: DedupKey) -> None:
        now = self._clock()
        order = self._order
        while order and order[0][0] <= now:
            self._responses.pop(order.popleft()[1], None)
        self._responses[key] = _IN_PROGRESS
        order.append((now + self.lifetime, key))

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


def encode_reply(request: m.CoapMessage, reply: Reply) -> bytes:
    code = _CODE.get(reply.code) or m.code_number(reply.code)
    opts = tuple((m.LOCATION_PATH, seg.encode()) for seg in reply.location)
    return m.piggybacked(request, code, opts, reply.payload)


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


class RegistrationFastPath:
    def __init__(self, rd: RegistrationInterface, dedup: Dedup | None = None) -> None:
        self.rd = rd
        self.dedup = dedup or Dedup()
        self.handled = 0
        self.duplicates = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def offer(self, data: bytes, address: Address, ancdata: list[tuple[int, int, bytes]], send: Send) -> bool:
        """Handle the datagram (True) or leave it to aiocoap (False)."""
        if len(data) < 6 or data[0] & 0xF0 != 0x40 or data[1] not in _METHOD:  # CON POST/DELETE only
            return False
        try:
            msg = m.decode(data)
        except m.CoapFormatError:
            return False
        path: list[str] = []
        query: list[str] = []
        try:
            for number, value in msg.options:
                if number == m.URI_PATH:
                    path.append(value.decode("utf-8"))
                elif number == m.URI_QUERY:
                    query.append(value.decode("utf-8"))
                elif number not in FAST_OPTIONS:
                    return False
        except UnicodeDecodeError:
            return False
        if not path or path[0] != "rd" or len(path) > 2 or (len(path) == 1 and msg.code != m.POST):
            return False
        if len(path) == 2 and not path[1]:
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
        self._drive(self._answer(msg, path, query, address, ancdata, send))
        return True

    async def _answer(self, msg: m.CoapMessage, path: list[str], query: list[str], address: Address,
                      ancdata: list[tuple[int, int, bytes]], send: Send) -> None:  # fmt: skip
        host, port = plain_host(address)
        try:
            reply = await self._dispatch(msg, path, query, host, port)
        except Exception:
            log.exception("fastpath_handler_failed", path="/".join(path), peer=f"{host}:{port}")
            reply = Reply(INTERNAL_ERROR)
        self.rd.count_code(_METHOD[msg.code], reply.code)
        data = encode_reply(msg, reply)
        self.dedup.complete(dedup_key(address, msg.mid), data)
        send(data, address, ancdata)

    def _dispatch(self, msg: m.CoapMessage, path: list[str], query: list[str], host: str,
                  port: int) -> Awaitable[Reply]:  # fmt: skip
        if len(path) == 1:
            return self.rd.register(query, msg.payload, host, port)
        if msg.code == m.POST:
            return self.rd.update(path[1], query, msg.payload, host, port)
        return self.rd.deregister(path[1])

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

    def __init__(self, ctx: Any, log: Any, loop: asyncio.AbstractEventLoop, *, fast: RegistrationFastPath) -> None:
        super().__init__(ctx, log, loop)
        self._fast = fast

    @classmethod
    async def create(cls, sock: socket.socket, mman: Any, fast: RegistrationFastPath, log: Any,
                     loop: asyncio.AbstractEventLoop) -> FastPathUDP6:  # fmt: skip
        """aiocoap's ``_create_transport_endpoint`` (PKTINFO and RECVERR socket options, no multicast) with this
        class on the batched recvmsg transport."""
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        if socknumbers.HAS_RECVERR:
            sock.setsockopt(socket.IPPROTO_IPV6, socknumbers.IPV6_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IP, socknumbers.IP_RECVERR, 1)
        protocol = cls(mman, log, loop, fast=fast)
        await create_batched_endpoint(loop, protocol, sock)
        await protocol.ready
        return protocol

    def datagram_msg_received(self, data: bytes, ancdata: list[tuple[int, int, bytes]], flags: int,
                              address: Address) -> None:  # fmt: skip
        if self._fast.offer(data, address, ancdata, self._send_raw):
            return
        super().datagram_msg_received(data, ancdata, flags, address)

    def _send_raw(self, data: bytes, address: Address, ancdata: list[tuple[int, int, bytes]]) -> None:
        pktinfo = [a for a in ancdata if a[0] == socket.IPPROTO_IPV6 and a[1] == socket.IPV6_PKTINFO]
        self.transport.sendmsg(data, pktinfo, 0, address)
