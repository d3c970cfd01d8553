"""/fw Block2 serving on the fast path over real UDP: byte for byte what the aiocoap resource answers, for every
block shape and error, and the same serve statistics (the OTA job's progress figure)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.coap.firmware_resource import FirmwareResource
from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import make_settings

BIG = bytes(range(256)) * 10 + b"tail"  # 2564 bytes: three 1024-byte blocks, the last one short
SMALL = b"tiny package"
BLOBS = {hashlib.sha256(b).hexdigest(): b for b in (BIG, SMALL)}
BIG_SHA, SMALL_SHA = (hashlib.sha256(b).hexdigest() for b in (BIG, SMALL))
BLOCK2 = 23


async def _lookup(sha: str) -> bytes | None:
    return BLOBS.get(sha)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[list[tuple[LwM2MServer, FirmwareResource]]]:
    out = []
    for name, fast in (("fast", True), ("slow", False)):
        srv = LwM2MServer(make_settings(tmp_path / name, coap_fast_path=fast), inventory=False)
        res = FirmwareResource(_lookup)
        srv.add_resource(("fw",), res)
        await srv.start()
        out.append((srv, res))
    try:
        yield out
    finally:
        for srv, _ in out:
            await srv.stop()


def _get(mid: int, sha: str, block: tuple[int, bool, int] | None = None, method: int = wire.GET) -> bytes:
    opts = [(wire.URI_PATH, b"fw"), (wire.URI_PATH, sha.encode())]
    if block is not None:
        num, more, szx = block
        v = num << 4 | int(more) << 3 | szx
        opts.append((BLOCK2, v.to_bytes((v.bit_length() + 7) // 8, "big")))
    return wire.build(wire.CON, method, mid, mid.to_bytes(2, "big"), opts)


CASES = [
    _get(1, BIG_SHA, (0, False, 6)),
    _get(2, BIG_SHA, (1, False, 6)),
    _get(3, BIG_SHA, (2, False, 6)),  # the short last block: no "more"
    _get(4, BIG_SHA, (5, False, 2)),  # 64-byte blocks
    _get(5, BIG_SHA, (0, False, 0)),  # 16-byte blocks, empty Block2 value
    _get(6, BIG_SHA),  # no Block2, larger than a block: block 0 at the default size
    _get(7, SMALL_SHA),  # fits: the whole package, no Block2
    _get(8, SMALL_SHA, (0, False, 6)),
    _get(9, BIG_SHA, (3, False, 6)),  # past the end: 4.02
    _get(10, BIG_SHA, (0, False, 7)),  # BERT: 4.00
    _get(11, "0" * 64),  # unknown package: 4.04
    _get(12, "not-a-sha"),  # 4.04
]


async def test_fw_blocks_same_bytes_as_aiocoap(pair: list[tuple[LwM2MServer, FirmwareResource]]) -> None:
    (fast, fast_res), (slow, slow_res) = pair
    assert slow.fast_path is None
    assert fast.fast_path is not None
    peers = [await wire.UdpPeer.open(s.coap_port) for s, _ in pair]
    try:
        codes = []
        for case in CASES:
            got = []
            for peer in peers:
                peer.send(case)
                got.append(await asyncio.wait_for(peer.inbox.get(), 2.0))
            assert got[0] == got[1], (case, [wire.parse(g) for g in got])
            codes.append(wire.parse(got[0]).code_str)
        assert codes == ["2.05"] * 8 + ["4.02", "4.00", "4.04", "4.04"]
        assert fast.fast_path.handled == len(CASES)
        first = wire.parse(await _roundtrip(peers[0], _get(20, BIG_SHA, (0, False, 6))))
        assert first.payload == BIG[:1024] and first.option(BLOCK2) == [b"\x0e"]  # num 0, more, szx 6
        assert first.option(4) == [bytes.fromhex(BIG_SHA[:16])] and first.option(28) == [(len(BIG)).to_bytes(2, "big")]
        fast_stats, slow_stats = fast_res.stats[BIG_SHA], slow_res.stats[BIG_SHA]
        assert (fast_stats.blocks - 1, fast_stats.bytes - 1024) == (slow_stats.blocks, slow_stats.bytes)
        assert list(fast_stats.last_block_by_remote.values()) == [(1024, len(BIG))]
        # a retransmitted block request is answered from the dedup cache, not served (counted) again
        served = fast_stats.blocks
        assert await _roundtrip(peers[0], _get(20, BIG_SHA, (0, False, 6))) == await _roundtrip(
            peers[0], _get(20, BIG_SHA, (0, False, 6)))  # fmt: skip
        assert fast_stats.blocks == served
        # PUT is aiocoap's (4.05), not the fast path's
        put = wire.parse(await _roundtrip(peers[0], _get(30, BIG_SHA, method=wire.PUT)))
        assert put.code_str == "4.05" and fast.fast_path.handled == len(CASES) + 1
    finally:
        for p in peers:
            p.close()


async def _roundtrip(peer: wire.UdpPeer, datagram: bytes) -> bytes:
    peer.send(datagram)
    return await asyncio.wait_for(peer.inbox.get(), 2.0)
