"""Per-peer CoAP Message IDs (RFC 7252 §4.4) on a fake clock: one peer's ids never repeat within 65,536 of them
however many go to other peers, and a counter is forgotten only once unused for EXCHANGE_LIFETIME."""

from __future__ import annotations

import itertools

from lwm2m_server.protocol.coapmsg import EXCHANGE_LIFETIME
from lwm2m_server.protocol.msgids import MessageIds

A = ("::ffff:127.0.0.1", 5700)
B = ("::ffff:127.0.0.1", 5701)


def starts(*values: int) -> MessageIds:
    it = iter(values)
    return MessageIds(rand=lambda: next(it))


def test_each_peer_counts_from_its_own_start_and_wraps_at_16_bits() -> None:
    ids = starts(0xFFFE, 7)
    assert [ids.next(A, 0.0) for _ in range(3)] == [0xFFFE, 0xFFFF, 0]
    assert [ids.next(B, 0.0) for _ in range(2)] == [7, 8]
    assert ids.next(A, 0.0) == 1


def test_traffic_to_other_peers_does_not_advance_a_peers_ids() -> None:
    """The failure this replaces: one counter for all peers wrapped after 65,536 messages to *anyone*, and the
    next id to a device was one it had seen 120 s before (its stack replayed the old answer)."""
    ids = MessageIds()
    first = ids.next(A, 0.0)
    others = [("::ffff:10.0.0.1", port) for port in range(1000, 1100)]
    for i, peer in zip(range(200_000), itertools.cycle(others), strict=False):
        ids.next(peer, i * 1e-3)  # 200,000 messages in 200 s: ~810 per EXCHANGE_LIFETIME to each other peer
    assert ids.next(A, 200.0) == (first + 1) & 0xFFFF


def test_no_reuse_with_one_peer_within_65536_ids() -> None:
    ids = MessageIds()
    seen = {ids.next(A, i * 1e-3) for i in range(0x10000)}
    assert len(seen) == 0x10000


def test_counter_forgotten_only_after_a_lifetime_unused() -> None:
    ids = starts(100, 5000, 9000)
    assert ids.next(A, 0.0) == 100
    assert ids.next(A, EXCHANGE_LIFETIME - 1) == 101  # used again: its lifetime starts over
    assert ids.next(B, EXCHANGE_LIFETIME + 1) == 5000
    assert len(ids) == 2  # A was used 2 s ago: kept
    assert ids.next(A, 2 * EXCHANGE_LIFETIME - 2) == 102
    # a lifetime after their last use both are forgotten; A starts afresh (every old id to it is stale now)
    assert ids.next(A, 3 * EXCHANGE_LIFETIME) == 9000
    assert len(ids) == 1
