"""A recvmsg datagram transport that drains up to ``READ_BATCH`` datagrams per readiness event.

aiocoap's ``RecvmsgSelectorDatagramTransport`` reads one datagram per event loop wake-up and, before each one,
tries the socket's error queue (an extra ``recvmsg`` syscall that nearly always fails with EAGAIN). In a storm
that is two syscalls and one ``epoll_wait`` per request on top of the work. This transport keeps the same
interface (``sendmsg``, ``close``, ``get_extra_info("socket")``, the ``datagram_msg_received`` /
``datagram_errqueue_received`` / ``error_received`` callbacks) but reads the error queue once per wake-up and
then up to ``READ_BATCH`` datagrams, so a busy socket costs one ``epoll_wait`` per batch. A batch also ends once
it has run ``BATCH_BUDGET_S``: a fast-path Register takes ~40 µs but a datagram aiocoap handles (a response, an
ICMP error that aiocoap matches against every exchange) can take a millisecond, and one callback running 64 of
those held the loop for tens of ms while REST requests and timers waited. The socket stays readable, so the
rest is read on the next wake-up, after the other ready callbacks.

A batch also ends after any datagram the protocol did not finish itself: ``datagram_msg_received`` returns
True only when the fast path answered the datagram in the callback. One that went on to aiocoap may have woken
a task that must run before the next datagram: aiocoap's blockwise layer reads each observation's notifications
through a task on a lossy one-slot iterator (``ClientObservation.__aiter__``), and notifications that arrived
while that task had not run were dropped (bench/notifications.py: 162 of 400 ``notification`` events with the
fast path on, 400 of 400 without it or with one datagram per wake-up).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from aiocoap.util import socknumbers

from lwm2m_server.logging import get_logger

log = get_logger(__name__)

READ_BATCH = 64  # datagrams per wake-up: bounded, so timers and other sockets still get their turn
BATCH_BUDGET_S = 0.002  # and no more than this long per wake-up
MAX_SIZE = 4096  # as aiocoap: a full MTU datagram and ample ancillary data
ANC_SIZE = 1024


def _guarded(callback: Any, *args: Any) -> Any:
    """One datagram whose handling raises (aiocoap has its own bugs) must not cost the rest of the batch."""
    try:
        return callback(*args)
    except Exception:
        log.exception("coap_datagram_callback_failed", callback=getattr(callback, "__name__", "?"))
        return None


def _set_unless_cancelled(waiter: asyncio.Future[None]) -> None:
    if not waiter.cancelled():
        waiter.set_result(None)


class BatchedRecvmsgTransport(asyncio.BaseTransport):
    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: Any,
                 waiter: asyncio.Future[None]) -> None:  # fmt: skip
        super().__init__(extra={"socket": sock})
        self._sock: socket.socket | None = sock
        self._fileno = sock.fileno()
        self._loop = loop
        self._protocol = protocol
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(loop.add_reader, self._fileno, self._read_ready)
        loop.call_soon(_set_unless_cancelled, waiter)

    def _read_ready(self) -> None:
        sock, protocol = self._sock, self._protocol
        if sock is None:
            return
        if socknumbers.HAS_RECVERR:
            try:
                data, anc, flags, addr = sock.recvmsg(MAX_SIZE, ANC_SIZE, socknumbers.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                protocol.error_received(exc)
            else:
                _guarded(protocol.datagram_errqueue_received, data, anc, flags, addr)
        deadline = time.perf_counter() + BATCH_BUDGET_S
        for i in range(READ_BATCH):
            if self._sock is None or (i and time.perf_counter() > deadline):  # closed by a callback, or budget spent
                return
            try:
                data, anc, flags, addr = sock.recvmsg(MAX_SIZE, ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                protocol.error_received(exc)
                return
            if _guarded(protocol.datagram_msg_received, data, anc, flags, addr) is not True:
                return  # not finished here (aiocoap's): let the tasks it woke run before the next datagram

    def sendmsg(self, data: bytes, ancdata: list[tuple[int, int, bytes]], flags: int, address: Any) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendmsg((data,), ancdata, flags, address)
        except OSError as exc:
            self._protocol.error_received(exc)

    def is_closing(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        if self._sock is None:
            return
        if not self._loop.is_closed():
            self._loop.call_soon(self._protocol.connection_lost, None)
            self._loop.remove_reader(self._fileno)
        self._sock.close()
        self._sock = None


async def create_batched_endpoint(loop: asyncio.AbstractEventLoop, protocol: Any, sock: socket.socket
                                  ) -> BatchedRecvmsgTransport:  # fmt: skip
    """Like aiocoap's ``create_recvmsg_datagram_endpoint``, with :class:`BatchedRecvmsgTransport`."""
    sock.setblocking(False)
    waiter: asyncio.Future[None] = loop.create_future()
    transport = BatchedRecvmsgTransport(loop, sock, protocol, waiter)
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
    return transport
