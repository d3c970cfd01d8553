"""NSTART across the server socket's two CoAP stacks (RFC 7252 §4.7: by default one outstanding interaction
per peer, NSTART = 1).

aiocoap keeps NSTART among its own exchanges and the fast client (:mod:`lwm2m_server.coap.fast_client`) among
its own, but neither sees the other's. So every server→device request on the plain socket takes the peer's
turn here first, in FIFO order, and holds it until its exchange is over (answered, failed or given up):
:func:`lwm2m_server.coap.exchange.send`, the first request of an observation, each fast request, and each
request of a bootstrap sequence (:func:`lwm2m_server.coap.exchange.send_to_remote`). Held a little longer
than the RFC needs (a CON acknowledged with an empty ACK stops being outstanding before its separate response),
never shorter. Every other CON aiocoap sends on the plain socket takes the turn too, from the socket's message
manager (:class:`lwm2m_server.coap.messages.PeerMessageManager`), until it is acknowledged: a separate response
of an aiocoap resource (sent when answering took longer than aiocoap's EMPTY_ACK_DELAY), and the Block2 requests
aiocoap's blockwise layer sends to complete a notification. The requests issued under a turn (:func:`covering`)
do not wait for it again.

Not needed over DTLS: every CON there is aiocoap's (the fast client never uses a session), and aiocoap's own
backlog holds NSTART = 1 per remote among its CONs, requests and separate responses alike (a session is one
remote object, :class:`lwm2m_server.coap.dtls.SecureAddress`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar
from types import TracebackType

Peer = tuple[str, int]


def socket_peer(host: str, port: int) -> Peer:
    """A device's ``host:port`` as the dual-stack socket names it (IPv4 as v4-mapped IPv6)."""
    return (f"::ffff:{host}" if ":" not in host else host, port)


class _Covering:
    __slots__ = ("active", "peer")

    def __init__(self, peer: Peer) -> None:
        self.peer, self.active = peer, True


_covering: ContextVar[_Covering | None] = ContextVar("lwm2m_turn_covering", default=None)


@contextlib.contextmanager
def covering(peer: Peer) -> Iterator[None]:
    """Mark the running task as holding ``peer``'s turn for the aiocoap request it issues in the block: the CONs
    aiocoap sends for it (its blockwise follow-ups too, from tasks that inherit this context) are covered by the
    turn. Tasks created in the block that outlive it (an observation's, whose later notifications aiocoap may
    complete with Block2 requests) see the mark as ended and take the turn themselves."""
    mark = _Covering(peer)
    token = _covering.set(mark)
    try:
        yield
    finally:
        mark.active = False
        _covering.reset(token)


def covered(peer: Peer) -> bool:
    """Whether the running code is inside :func:`covering` for ``peer``."""
    mark = _covering.get()
    return mark is not None and mark.active and mark.peer == peer


class PeerTurns:
    def __init__(self) -> None:
        self._waiting: dict[Peer, deque[asyncio.Future[None]]] = {}  # a key: that peer's turn is taken

    def busy(self, peer: Peer) -> bool:
        """Whether an exchange with ``peer`` is outstanding."""
        return peer in self._waiting

    def turn(self, peer: Peer) -> _Turn:
        """``async with turns.turn(peer):`` waits for ``peer``'s turn (behind those that asked before) and holds
        it for the block."""
        return _Turn(self, peer)

    def try_acquire(self, peer: Peer) -> bool:
        """Take ``peer``'s turn now if nobody holds it (True; the caller must :meth:`release` it)."""
        if peer in self._waiting:
            return False
        self._waiting[peer] = deque()
        return True

    async def acquire(self, peer: Peer) -> None:
        """Wait for ``peer``'s turn; the caller must :meth:`release` it (``turn`` does both)."""
        waiting = self._waiting.get(peer)
        if waiting is None:
            self._waiting[peer] = deque()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # handed the turn as it was cancelled: pass it on
                self.release(peer)
            else:
                with contextlib.suppress(ValueError):
                    waiting.remove(fut)
            raise

    def release(self, peer: Peer) -> None:
        waiting = self._waiting[peer]
        while waiting:
            fut = waiting.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        del self._waiting[peer]


class _Turn:
    __slots__ = ("_peer", "_turns")

    def __init__(self, turns: PeerTurns, peer: Peer) -> None:
        self._turns, self._peer = turns, peer

    async def __aenter__(self) -> None:
        await self._turns.acquire(self._peer)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        self._turns.release(self._peer)
