"""The registration fast path over real UDP: the same bytes as the aiocoap resources, message-id deduplication
with the cached response, everything else still served by aiocoap on the same socket (including the server's
own CON requests, retransmitted with RFC 7252 timing)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import make_settings

LINKS = b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>'


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[LwM2MServer, LwM2MServer]]:
    """A server with the fast path and one without (aiocoap resources only)."""
    fast = LwM2MServer(make_settings(tmp_path / "fast"), inventory=False)
    slow = LwM2MServer(make_settings(tmp_path / "slow", coap_fast_path=False), inventory=False)
    await fast.start()
    await slow.start()
    try:
        yield fast, slow
    finally:
        await fast.stop()
        await slow.stop()


def _masked(data: bytes, reg_id: str | None) -> bytes:
    return data.replace(reg_id.encode(), b"<id>") if reg_id else data


async def _exchange(peer: wire.UdpPeer, datagram: bytes) -> bytes:
    peer.send(datagram)
    return await asyncio.wait_for(peer.inbox.get(), 2.0)


async def test_same_bytes_as_aiocoap(pair: tuple[LwM2MServer, LwM2MServer]) -> None:
    fast, slow = pair
    assert fast.fast_path is not None and slow.fast_path is None
    peers = [await wire.UdpPeer.open(s.coap_port) for s in pair]
    try:
        ids: list[str] = []
        for srv, peer in zip(pair, peers, strict=True):
            raw = await _exchange(peer, wire.register(0x0101, b"\x01\x02", ["ep=twin", "lt=60", "lwm2m=1.1"], LINKS))
            ids.append(wire.parse(raw).option(wire.LOCATION_PATH)[1].decode())
            assert srv.registry.get("twin") is not None
        def entry(method: int, mid: int, reg_id: bytes, query: bytes = b"", payload: bytes = b"") -> bytes:
            opts = [(wire.URI_PATH, b"rd"), (wire.URI_PATH, reg_id)] + ([(wire.URI_QUERY, query)] if query else [])
            return wire.build(wire.CON, method, mid, bytes([mid & 0xFF]), opts, payload)

        cases = [
            lambda _id: wire.register(0x0102, b"\x03", ["lt=60"], LINKS),  # missing ep
            lambda _id: wire.register(0x0103, b"\x04", ["ep=a", "lwm2m=9.9"], LINKS),  # 4.12
            lambda _id: wire.register(0x0104, b"", ["ep=a", "ep=b"], LINKS),  # duplicate, empty token
            lambda _id: wire.register(0x0105, b"\x05", ["ep=a"], b"<</<<;;;\x00\xff"),  # bad payload
            lambda i: entry(wire.POST, 0x0106, i, payload=b"</1/0>,</5/0>"),
            lambda i: entry(wire.POST, 0x0107, i, query=b"lt=-1"),
            lambda _id: entry(wire.POST, 0x0108, b"x"),
            lambda i: entry(wire.DELETE, 0x0109, i),
            lambda i: entry(wire.DELETE, 0x010A, i),
        ]
        codes = []
        for case in cases:
            got = []
            for peer, reg_id in zip(peers, ids, strict=True):
                got.append(_masked(await _exchange(peer, case(reg_id.encode())), reg_id))
            assert got[0] == got[1], [wire.parse(g) for g in got]
            codes.append(wire.parse(got[0]).code_str)
        assert codes == ["4.00", "4.12", "4.00", "4.00", "2.04", "4.00", "4.04", "2.02", "4.04"]
        assert fast.fast_path is not None and fast.fast_path.handled == 1 + len(cases)
        assert fast.client.stats.snapshot() == slow.client.stats.snapshot()
        assert fast.counters == slow.counters
    finally:
        for p in peers:
            p.close()


async def test_register_answer_bytes(pair: tuple[LwM2MServer, LwM2MServer]) -> None:
    fast, _ = pair
    peer = await wire.UdpPeer.open(fast.coap_port)
    try:
        raw = await _exchange(peer, wire.register(0xBEEF, b"\xca\xfe", ["ep=bytes-1"], LINKS))
        reg = fast.registry.get("bytes-1")
        assert reg is not None and len(reg.reg_id) == 8
        # ACK 2.01, MID BEEF, token CAFE, Location-Path "rd" then the id (RFC 7252 §3, §5.10.7)
        assert raw == b"\x62\x41\xbe\xef\xca\xfe\x82rd\x08" + reg.reg_id.encode()
    finally:
        peer.close()


async def test_duplicate_gets_the_cached_response(pair: tuple[LwM2MServer, LwM2MServer]) -> None:
    fast, _ = pair
    assert fast.fast_path is not None
    peer = await wire.UdpPeer.open(fast.coap_port)
    sub = fast.events.subscribe(types={"registered"})
    try:
        dgram = wire.register(0x4242, b"\x42", ["ep=dup", "lt=60"], LINKS)
        first = await _exchange(peer, dgram)
        reg_id = fast.registry.get("dup").reg_id  # type: ignore[union-attr]
        again = await _exchange(peer, dgram)  # a retransmission: same MID from the same address
        assert again == first and fast.fast_path.duplicates == 1
        assert fast.registry.get("dup").reg_id == reg_id  # type: ignore[union-attr]
        assert (await sub.get(1.0)).endpoint == "dup"
        with pytest.raises(TimeoutError):
            await sub.get(0.2)  # registered once
        fresh = await _exchange(peer, wire.register(0x4243, b"\x42", ["ep=dup", "lt=60"], LINKS))
        assert wire.parse(fresh).code_str == "2.01" and fast.registry.get("dup").reg_id != reg_id  # type: ignore[union-attr]
        other = await wire.UdpPeer.open(fast.coap_port)  # same MID, another address: a different request
        try:
            assert wire.parse(await _exchange(other, dgram)).code_str == "2.01"
        finally:
            other.close()
    finally:
        sub.close()
        peer.close()


async def test_other_traffic_goes_to_aiocoap(pair: tuple[LwM2MServer, LwM2MServer]) -> None:
    fast, _ = pair
    assert fast.fast_path is not None
    peer = await wire.UdpPeer.open(fast.coap_port)
    try:
        non = wire.parse(await _exchange(peer, wire.register(7, b"n", ["ep=non"], LINKS, mtype=wire.NON)))
        assert (non.mtype, non.code_str) == (wire.NON, "4.00")
        wkc_path = [(wire.URI_PATH, b".well-known"), (wire.URI_PATH, b"core")]
        wkc = wire.parse(await _exchange(peer, wire.build(wire.CON, wire.GET, 8, b"w", wkc_path)))
        assert wkc.code_str == "2.05" and b"</rd>" in wkc.payload
        rd_delete = wire.build(wire.CON, wire.DELETE, 9, b"d", [(wire.URI_PATH, b"rd")])
        bad_method = wire.parse(await _exchange(peer, rd_delete))
        assert bad_method.code_str == "4.05"
        accept = wire.register(10, b"a", ["ep=with-accept"], LINKS)[:-len(LINKS) - 1] + b"\x21\x28\xff" + LINKS
        assert wire.parse(await _exchange(peer, accept)).code_str == "2.01"  # Accept (17): aiocoap's path
        assert fast.registry.get("with-accept") is not None
        assert fast.fast_path.handled == 0
    finally:
        peer.close()


async def test_server_requests_still_retransmit(tmp_path: Path) -> None:
    """With the fast path in front, the inventory's CON GET to the device is aiocoap's: unanswered, it is
    retransmitted after ACK_TIMEOUT..ACK_TIMEOUT*ACK_RANDOM_FACTOR (2-3 s) with the same MID and token."""
    async with LwM2MServer(make_settings(tmp_path / "d")) as server:
        peer = await wire.UdpPeer.open(server.coap_port, answer_requests=False)
        loop = asyncio.get_running_loop()
        try:
            assert wire.parse(await _exchange(peer, wire.register(1, b"r", ["ep=quiet"], LINKS))).code_str == "2.01"
            t0 = loop.time()
            while not peer.requests:
                await asyncio.sleep(0.01)
                assert loop.time() - t0 < 2
            first, t_first = peer.requests[0], loop.time()
            while not any(r.mid == first.mid for r in peer.requests[1:]):
                await asyncio.sleep(0.02)
                assert loop.time() - t_first < 3.5
            again = next(r for r in peer.requests[1:] if r.mid == first.mid)
            assert again.token == first.token and again.mtype == wire.CON
            assert 1.9 <= loop.time() - t_first <= 3.3
        finally:
            peer.close()


@pytest.mark.parametrize("fast", [True, False])
async def test_icmp_error_fails_a_request_fast(tmp_path: Path, fast: bool) -> None:
    """The socket's error queue is still read (once per wake-up): a request to a port that has gone away fails
    on the ICMP port-unreachable, long before its timeout, with or without the fast path."""
    from lwm2m_server.coap.errors import DeviceError, DeviceTimeout

    async with LwM2MServer(make_settings(tmp_path / "d", coap_fast_path=fast), inventory=False) as server:
        peer = await wire.UdpPeer.open(server.coap_port)
        assert wire.parse(await _exchange(peer, wire.register(1, b"g", ["ep=gone"], LINKS))).code_str == "2.01"
        peer.close()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(DeviceError) as err:
            await server.client.read("gone", "/3/0", timeout=8.0)
        assert not isinstance(err.value, DeviceTimeout) and loop.time() - t0 < 2.0, err.value
