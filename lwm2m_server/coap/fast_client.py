"""The server's own CON requests on the fast path: :class:`~lwm2m_server.protocol.conclient.ConClient` on the
server socket, for the hot one — a Block1 firmware push, ~50 blocks per device.

aiocoap spends a request object, a future, a pipe, a retransmission handle and a deep-copied message per block;
this sends the encoded datagram from the socket's datagram callback and resolves one future per block. Message
ids and tokens are drawn from aiocoap's own allocators on the same socket (the message manager's per-peer
counters, :mod:`lwm2m_server.coap.messages`, and the token manager's), so no id can collide with an aiocoap
exchange to the same device. NSTART holds across both stacks: each request takes the device's turn in the
:class:`~lwm2m_server.coap.turns.PeerTurns` shared with the project's aiocoap requests
(:mod:`lwm2m_server.coap.exchange`), so it waits while a read or an observe to the device is outstanding,
or a separate response of an aiocoap resource is unacknowledged (:mod:`lwm2m_server.coap.messages`), and
they wait for it.

The socket's :class:`~lwm2m_server.coap.fastpath.FastPathUDP6` connects it when the listener starts (before
that, and for DTLS devices, callers use aiocoap).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, cast

from lwm2m_server.coap.turns import PeerTurns, socket_peer
from lwm2m_server.protocol import coapmsg as m
from lwm2m_server.protocol.conclient import ConClient

Address = tuple[Any, ...]
SendTo = Callable[[bytes, Address], None]


class FastClientError(Exception):
    """The request got no response: ``reason`` is ``timeout`` (retransmissions used up) or ``reset``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def socket_address(host: str, port: int) -> Address:
    """The dual-stack socket's address for a registration's ``host:port`` (IPv4 as v4-mapped IPv6)."""
    return (*socket_peer(host, port), 0, 0)


class FastClient:
    def __init__(self, *, turns: PeerTurns | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        """``turns``: NSTART shared with the socket's aiocoap requests (None: among these requests only)."""
        self.turns = turns if turns is not None else PeerTurns()
        self._clock = clock
        self._send: SendTo | None = None
        self._con: ConClient | None = None
        self._waiters: dict[int, asyncio.Future[m.CoapMessage]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.requests = 0  # sent through here (a test and /metrics can see the fast path carried them)
        self.requests_by_code: Counter[int] = Counter()  # the same by method code (PUT: push blocks, GET: observes)

    @property
    def connected(self) -> bool:
        return self._con is not None

    def connect(self, send: SendTo, next_mid: Callable[[Hashable], int], next_token: Callable[[], bytes],
                loop: asyncio.AbstractEventLoop) -> None:  # fmt: skip
        """Called by the listener once its socket is up; ids come from the socket's own CoAP stack."""
        self._send, self._loop = send, loop
        self._con = ConClient(next_mid, next_token)

    def disconnect(self) -> None:
        """The socket closed: every waiting request fails."""
        self._con = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        waiters, self._waiters = self._waiters, {}
        for fut in waiters.values():
            if not fut.done():
                fut.set_exception(FastClientError("closed"))

    async def request(self, address: Address, code: int, options: tuple[tuple[int, bytes], ...],
                      payload: bytes = b"") -> m.CoapMessage:  # fmt: skip
        """One CON request; the response (piggybacked or separate), or :class:`FastClientError`."""
        key = (address[0], address[1])
        async with self.turns.turn(key):
            con, loop = self._con, self._loop
            if con is None or loop is None:
                raise FastClientError("not connected")
            self.requests += 1
            self.requests_by_code[code] += 1
            handle = con.request(key, code, options, payload, self._clock())
            fut: asyncio.Future[m.CoapMessage] = loop.create_future()
            self._waiters[handle] = fut
            self._flush()
            try:
                return await fut
            except asyncio.CancelledError:
                self._waiters.pop(handle, None)
                if self._con is con:
                    con.cancel(handle, self._clock())
                    self._flush()
                raise

    def offer(self, data: bytes, address: Address) -> bool:
        """A datagram from the socket: True if it answered (or duplicated) one of our requests."""
        con = self._con
        if con is None or len(data) < 4 or data[0] >> 6 != 1:
            return False
        if not (data[0] & 0x20 or data[1] >= 64):  # only ACK/RST or a response (code class >= 2)
            return False
        head = m.peek(data)
        remote = address[:2]
        if head is None or not con.claims(remote, *head):
            return False  # not ours: aiocoap's to parse (the usual case for a response), undecoded here
        try:
            msg = m.decode(data)
        except m.CoapFormatError:
            return False  # ours by its header but malformed further on: aiocoap's, as any malformed datagram
        con.receive(remote, msg, self._clock())
        self._flush()
        return True

    def _flush(self) -> None:
        con, send = self._con, self._send
        if con is None or send is None:
            return
        for key, data in con.take_outgoing():
            send(data, (*cast(Address, key), 0, 0))  # keyed by (host, port) in request()
        for done in con.take_completions():
            fut = self._waiters.pop(done.handle, None)
            if fut is None or fut.done():
                continue
            if done.response is not None:
                fut.set_result(done.response)
            else:
                fut.set_exception(FastClientError(done.error or "failed"))
        self._schedule()

    def _schedule(self) -> None:
        con, loop = self._con, self._loop
        if con is None or loop is None:
            return
        at = con.next_deadline()
        if at is None or (self._timer_at is not None and self._timer_at <= at):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_later(max(0.0, at - self._clock()), self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        con = self._con
        if con is not None:
            con.tick(self._clock())
            self._flush()
