"""Bad input on the CoAP socket: each datagram gets the right 4.xx (or RST / silence for non-CoAP), and the
server keeps serving — proven by registering a good device afterwards."""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import make_settings

LINKS = b"</1/0>,</3/0>"


async def _expect(peer: wire.UdpPeer, datagram: bytes, code: str) -> wire.Parsed:
    """Send ``datagram`` and check the answer to it: late answers to earlier (fuzzed) datagrams are skipped (by
    token, or by message id for a token-less request), so a slow machine cannot pair this request with another
    datagram's reply."""
    peer.send(datagram)
    req = wire.parse(datagram)

    def answers(resp: wire.Parsed) -> bool:
        return resp.token == req.token if req.token else resp.mid == req.mid

    resp = await peer.recv()
    while not answers(resp):
        resp = await peer.recv()
    assert resp.code_str == code, (datagram[:40], resp)
    return resp


async def _still_serving(peer: wire.UdpPeer, server: LwM2MServer, ep: str = "good") -> None:
    mid = random.randrange(0x10000)
    resp = await _expect(peer, wire.register(mid, b"\x42", [f"ep={ep}", "lt=60"], LINKS), "2.01")
    assert resp.mid == mid and resp.mtype == wire.ACK
    assert ep in server.registry


async def test_malformed_registrations(server: LwM2MServer) -> None:
    peer = await wire.UdpPeer.open(server.coap_port)
    try:
        await _expect(peer, wire.register(1, b"a", ["lt=60"], LINKS), "4.00")  # missing ep
        await _expect(peer, wire.register(2, b"b", ["ep=a", "ep=b"], LINKS), "4.00")  # duplicated ep
        await _expect(peer, wire.register(3, b"c", ["ep=a", "lt=1", "lt=2"], LINKS), "4.00")  # duplicated lt
        await _expect(peer, wire.register(4, b"d", ["ep=a", "lt=-5"], LINKS), "4.00")
        await _expect(peer, wire.register(5, b"e", ["ep=a", "lwm2m=7.0"], LINKS), "4.12")
        await _expect(peer, wire.register(6, b"f", ["ep=a"], b"<</<<;;;\x00\xff garbage"), "4.00")
        await _expect(peer, wire.register(7, b"g", ["ep=a", "lt=" + "9" * 40], LINKS), "4.00")
        non = await _expect(peer, wire.register(8, b"h", ["ep=a"], LINKS, mtype=wire.NON), "4.00")
        assert non.mtype == wire.NON
        big = b",".join(b"</%d/0>" % i for i in range(3000))  # ~25 kB in one datagram
        await _expect(peer, wire.register(9, b"i", ["ep=a"], big), "4.00")
        upd = wire.build(wire.CON, wire.POST, 10, b"j", [(wire.URI_PATH, b"rd"), (wire.URI_PATH, b"nope")])
        await _expect(peer, upd, "4.04")
        dereg = wire.build(wire.CON, wire.DELETE, 11, b"k", [(wire.URI_PATH, b"rd"), (wire.URI_PATH, b"nope")])
        await _expect(peer, dereg, "4.04")
        assert len(server.registry) == 0
        await _still_serving(peer, server)
    finally:
        peer.close()


async def test_garbage_datagrams_are_dropped(server: LwM2MServer) -> None:
    peer = await wire.UdpPeer.open(server.coap_port)
    try:
        for junk in (b"", b"\x00", b"hello world", b"\xff" * 40, bytes(range(256)), b"\x40\x02"):
            peer.send(junk)
        assert await peer.nothing(0.3)  # not CoAP (version bits, too short): silently dropped
        # truncated CoAP: token length 8 but no token; option running past the end
        for truncated in (b"\x48\x02\x00\x01\x01", b"\x40\x02\x00\x02\xbd", b"\x40\x02\x00\x03\xb5rd"):
            peer.send(truncated)
        for raw in await peer.drain(0.3):
            r = wire.parse(raw)
            assert r.mtype == wire.RST or r.code_str.startswith("4."), r
        await _still_serving(peer, server)
    finally:
        peer.close()


junk = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: b"\x40\x02\x12\x34" + b),  # a CoAP CON POST header + random rest
    st.binary(max_size=200).map(lambda b: b"\x41\x02\x12\x34\x01\xb2rd" + b),  # ... to /rd
)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(datagrams=st.lists(junk, min_size=1, max_size=40))
def test_random_datagrams_never_break_the_server(datagrams: list[bytes]) -> None:
    async def scenario(data_dir: Path) -> None:
        async with LwM2MServer(make_settings(data_dir), inventory=False) as server:
            peer = await wire.UdpPeer.open(server.coap_port)
            try:
                for d in datagrams:
                    peer.send(d)
                await peer.drain(0.05)  # replies (4.xx, RST, even 2.01 for a lucky valid Register) are all acceptable
                await _still_serving(peer, server, ep="after-fuzz")
            finally:
                peer.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp)))
