"""CoAP Message IDs counted per peer (RFC 7252 §4.4), sans-IO.

"The same Message ID MUST NOT be reused (in the communication with the same endpoint) within the
EXCHANGE_LIFETIME" (247 s): the receiver deduplicates by (sender, Message ID) for that long and answers a reused
id with the response it cached for the *old* message. One counter for the whole server (aiocoap's) wraps after
65,536 messages, i.e. at 265 messages/s over 247 s: a 1,000-device push (~55,000 Block1 requests plus the
reads and observes) does that, and the next read of a device reused an id the device had seen ~120 s before.
The device's stack replayed its old answer (another token): the read was acknowledged, never answered, and
waited out its timeout. So each peer gets its own counter (random start), and both CoAP stacks on the server
socket (aiocoap's message manager and the fast client) draw from the same counter for the same peer.

A peer's counter is forgotten once it has not been used for EXCHANGE_LIFETIME (every id sent to it is then
old enough to be reused), so the table holds only the peers talked to recently.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Hashable

from lwm2m_server.protocol.coapmsg import EXCHANGE_LIFETIME


class _Peer:
    __slots__ = ("last", "next")

    def __init__(self, first: int, now: float) -> None:
        self.next = first
        self.last = now


class MessageIds:
    """``next(peer, now)``: the next Message ID for ``peer``; ids to one peer repeat only after 65,536 of them."""

    def __init__(self, *, lifetime: float = EXCHANGE_LIFETIME,
                 rand: Callable[[], int] = lambda: random.randrange(0x10000)) -> None:  # fmt: skip
        self.lifetime = lifetime
        self._rand = rand
        self._peers: dict[Hashable, _Peer] = {}
        self._expiry: list[tuple[float, int, Hashable]] = []  # (check at, tie-breaker, peer): one entry a peer
        self._seq = 0

    def __len__(self) -> int:
        """Peers with a live counter."""
        return len(self._peers)

    def next(self, peer: Hashable, now: float) -> int:
        if self._expiry and self._expiry[0][0] <= now:
            self._forget(now)
        state = self._peers.get(peer)
        if state is None:
            state = self._peers[peer] = _Peer(self._rand() & 0xFFFF, now)
            self._push(now + self.lifetime, peer)
        mid = state.next
        state.next = (mid + 1) & 0xFFFF
        state.last = now
        return mid

    def _push(self, at: float, peer: Hashable) -> None:
        self._seq += 1
        heapq.heappush(self._expiry, (at, self._seq, peer))

    def _forget(self, now: float) -> None:
        expiry, lifetime = self._expiry, self.lifetime
        while expiry and expiry[0][0] <= now:
            _, _, peer = heapq.heappop(expiry)
            state = self._peers.get(peer)
            if state is None:
                continue
            if state.last + lifetime <= now:
                del self._peers[peer]
            else:
                self._push(state.last + lifetime, peer)
