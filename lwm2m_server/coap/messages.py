"""aiocoap's message manager with Message IDs counted per peer (:mod:`lwm2m_server.protocol.msgids`).

aiocoap 0.4 draws every Message ID of a context from one 16-bit counter, so a server sending more than 65,536
messages within EXCHANGE_LIFETIME (247 s) reuses ids with the same device; the device's deduplication then
replays its cached answer to the old message (another token) and the new request is acknowledged but never
answered. :class:`PeerMessageManager` is aiocoap's MessageManager with one change: the id is drawn from the
message's peer's own counter. The fast client on the same socket draws from the same counters
(:meth:`PeerMessageManager.next_id_for`), so the two stacks never collide either.

With ``turns`` (the socket's :class:`~lwm2m_server.coap.turns.PeerTurns`, shared with the fast client), a CON
that no turn covers — a separate response (sent when a resource took longer than EMPTY_ACK_DELAY), a Block2
request aiocoap's blockwise layer sends to complete a notification — takes its peer's turn before it goes out
and holds it until its exchange ends (ACK, RST, retransmissions used up, an ICMP error, shutdown): aiocoap's own
backlog keeps it apart from aiocoap's requests, but not from a fast request (a Block1 push block) to the same
device. When the turn is taken it waits, in FIFO order, in a task. A request issued under its turn
(:func:`lwm2m_server.coap.turns.covering`, by :func:`lwm2m_server.coap.exchange.send` and the observer) goes
out as before.

:func:`add_transport` is aiocoap's ``Context._append_tokenmanaged_messagemanaged_transport`` with this manager.
Both rely on aiocoap internals; tests/unit/test_aiocoap_internals.py checks them on the installed version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, cast

from aiocoap import Context
from aiocoap.messagemanager import MessageManager
from aiocoap.numbers.types import CON
from aiocoap.tokenmanager import TokenManager
from aiocoap.transports.udp6 import UDP6EndpointAddress

from lwm2m_server.coap.turns import Peer, PeerTurns, covered
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.msgids import MessageIds

log = get_logger(__name__)


def peer_key(remote: Any) -> Hashable:
    """The counter key of an aiocoap remote: a udp6 address by its (host, port), the fast client's key for the
    same device (see :func:`lwm2m_server.coap.fast_client.socket_address`); any other remote (a DTLS session)
    is its own key."""
    if isinstance(remote, UDP6EndpointAddress):
        return tuple(remote.sockaddr[:2])
    return remote  # type: ignore[no-any-return]


class PeerMessageManager(MessageManager):  # type: ignore[misc]
    def __init__(self, token_manager: TokenManager, ids: MessageIds | None = None,
                 clock: Callable[[], float] = time.monotonic, turns: PeerTurns | None = None) -> None:  # fmt: skip
        super().__init__(token_manager)
        self.ids = ids if ids is not None else MessageIds()
        self._clock = clock
        self._peer: Hashable = None  # the peer of the message send_message is assigning an id to
        self.turns = turns
        self._held: dict[tuple[Any, int], Peer] = {}  # (remote, mid) of a CON response on the wire -> its turn's peer
        self._deferred: set[asyncio.Task[None]] = set()
        self.deferred_cons = 0  # uncovered CONs (responses, Block2 follow-ups) that waited for the turn (tests)

    def send_message(self, message: Any, messageerror_monitor: Any) -> None:
        self._peer = peer_key(message.remote)
        if self.turns is not None and isinstance(message.remote, UDP6EndpointAddress) and message.code.is_request():
            # decided here, in the issuing task (aiocoap may send it later, from its backlog)
            message._lwm2m_covered = covered(cast(Peer, self._peer))
        try:
            super().send_message(message, messageerror_monitor)
        finally:
            self._peer = None

    # -- NSTART for the CONs no turn covers (see the module docstring) ------------------------------------------
    def _send_initially(self, message: Any, messageerror_monitor: Any = None) -> None:
        turns = self.turns
        if (turns is None or message.mtype is not CON or not isinstance(message.remote, UDP6EndpointAddress)
                or (not message.code.is_response() and getattr(message, "_lwm2m_covered", True))):  # fmt: skip
            super()._send_initially(message, messageerror_monitor)  # a request sent under its turn, or not ours
            return
        peer = (message.remote.sockaddr[0], message.remote.sockaddr[1])  # the fast client's key for the device
        if turns.try_acquire(peer):
            self._hold(peer, message, messageerror_monitor)
            return
        self.deferred_cons += 1
        task = asyncio.ensure_future(self._send_in_turn(turns, peer, message, messageerror_monitor))
        self._deferred.add(task)
        task.add_done_callback(self._deferred.discard)

    async def _send_in_turn(self, turns: PeerTurns, peer: Peer, message: Any, messageerror_monitor: Any) -> None:
        await turns.acquire(peer)
        if self._active_exchanges is None:  # shut down while it waited
            turns.release(peer)
            return
        try:
            self._hold(peer, message, messageerror_monitor)
        except Exception:
            log.exception("coap_uncovered_con_failed", peer=str(peer))
            self._settle()

    def _hold(self, peer: Peer, message: Any, messageerror_monitor: Any) -> None:
        self._held[(message.remote, message.mid)] = peer
        super()._send_initially(message, messageerror_monitor)

    def _settle(self) -> None:
        """Release the turn of every held CON response whose exchange aiocoap no longer has."""
        if not self._held or self.turns is None:
            return
        active = self._active_exchanges
        for key in [k for k in self._held if active is None or k not in active]:
            self.turns.release(self._held.pop(key))

    def _remove_exchange(self, message: Any) -> None:
        super()._remove_exchange(message)
        self._settle()

    def _retransmit(self, message: Any, timeout: float, retransmission_counter: int) -> None:
        super()._retransmit(message, timeout, retransmission_counter)
        self._settle()

    def dispatch_error(self, error: Any, remote: Any) -> None:
        super().dispatch_error(error, remote)
        self._settle()

    async def shutdown(self) -> None:
        for task in list(self._deferred):
            task.cancel()
        await super().shutdown()
        self._settle()

    def _next_message_id(self) -> int:
        """aiocoap calls this (only) from send_message, for the message being sent."""
        return self.ids.next(self._peer, self._clock())

    def next_id_for(self, peer: Hashable) -> int:
        """A Message ID for a message to ``peer`` (a ``(host, port)`` key) sent past aiocoap on this socket."""
        return self.ids.next(peer, self._clock())


async def add_transport(context: Context, construct: Callable[[PeerMessageManager], Awaitable[Any]], *,
                        turns: PeerTurns | None = None) -> None:  # fmt: skip
    """Add a message-managed transport built by ``construct(manager)`` to ``context``, with per-peer ids;
    ``turns``: NSTART shared with the fast client on the same socket, for the manager's CON responses."""
    tman = TokenManager(context)
    mman = PeerMessageManager(tman, turns=turns)
    transport = await construct(mman)
    mman.message_interface = transport
    tman.token_interface = mman
    context.request_interfaces.append(tman)
