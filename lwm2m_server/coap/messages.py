"""aiocoap's message manager with Message IDs counted per peer (:mod:`lwm2m_server.protocol.msgids`).

aiocoap 0.4 draws every Message ID of a context from one 16-bit counter, so a server sending more than 65,536
messages within EXCHANGE_LIFETIME (247 s) reuses ids with the same device; the device's deduplication then
replays its cached answer to the old message (another token) and the new request is acknowledged but never
answered. :class:`PeerMessageManager` is aiocoap's MessageManager with one change: the id is drawn from the
message's peer's own counter. The fast client on the same socket draws from the same counters
(:meth:`PeerMessageManager.next_id_for`), so the two stacks never collide either.

:func:`add_transport` is aiocoap's ``Context._append_tokenmanaged_messagemanaged_transport`` with this manager.
Both rely on aiocoap internals; tests/unit/test_aiocoap_internals.py checks them on the installed version.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from aiocoap import Context
from aiocoap.messagemanager import MessageManager
from aiocoap.tokenmanager import TokenManager
from aiocoap.transports.udp6 import UDP6EndpointAddress

from lwm2m_server.protocol.msgids import MessageIds


def peer_key(remote: Any) -> Hashable:
    """The counter key of an aiocoap remote: a udp6 address by its (host, port), the fast client's key for the
    same device (see :func:`lwm2m_server.coap.fast_client.socket_address`); any other remote (a DTLS session)
    is its own key."""
    if isinstance(remote, UDP6EndpointAddress):
        return tuple(remote.sockaddr[:2])
    return remote  # type: ignore[no-any-return]


class PeerMessageManager(MessageManager):  # type: ignore[misc]
    def __init__(self, token_manager: TokenManager, ids: MessageIds | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        super().__init__(token_manager)
        self.ids = ids if ids is not None else MessageIds()
        self._clock = clock
        self._peer: Hashable = None  # the peer of the message send_message is assigning an id to

    def send_message(self, message: Any, messageerror_monitor: Any) -> None:
        self._peer = peer_key(message.remote)
        try:
            super().send_message(message, messageerror_monitor)
        finally:
            self._peer = None

    def _next_message_id(self) -> int:
        """aiocoap calls this (only) from send_message, for the message being sent."""
        return self.ids.next(self._peer, self._clock())

    def next_id_for(self, peer: Hashable) -> int:
        """A Message ID for a message to ``peer`` (a ``(host, port)`` key) sent past aiocoap on this socket."""
        return self.ids.next(peer, self._clock())


async def add_transport(context: Context, construct: Callable[[PeerMessageManager], Awaitable[Any]]) -> None:
    """Add a message-managed transport built by ``construct(manager)`` to ``context``, with per-peer ids."""
    tman = TokenManager(context)
    mman = PeerMessageManager(tman)
    transport = await construct(mman)
    mman.message_interface = transport
    tman.token_interface = mman
    context.request_interfaces.append(tman)
