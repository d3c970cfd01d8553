"""Inbound Observe notifications on the fast-path socket (real UDP on loopback): a burst of notifications read
in one wake-up of the batched transport reaches the server as one ``notification`` event each. aiocoap's
blockwise layer reads an observation's notifications through a lossy one-slot iterator task, so the transport
must give that task the loop after each datagram it hands to aiocoap (it used to deliver one of a burst)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lwm2m_server.protocol.jsonvalues import content_to_json
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import make_settings, until, wait_event

OBSERVE = 6
BATTERY = LwM2MPath.parse("/3/0/9")
BURST = 10


def _content(mtype: int, mid: int, token: bytes, observe: int, value: int) -> bytes:
    opts = [(OBSERVE, observe.to_bytes(1, "big")), (wire.CONTENT_FORMAT, b"")]
    return wire.build(mtype, 0x45, mid, token, opts, str(value).encode())


async def test_a_burst_of_notifications_is_delivered_whole(tmp_path: Path) -> None:
    server = LwM2MServer(make_settings(tmp_path), inventory=False)
    await server.start()
    assert server.fast_path is not None
    peer = await wire.UdpPeer.open(server.coap_port, answer_requests=False)
    try:
        peer.send(wire.register(0x0201, b"\x01", ["ep=burst", "lt=60", "lwm2m=1.1"], b'</>;rt="oma.lwm2m",</3/0>'))
        assert (await peer.recv()).code_str == "2.01"
        observing = asyncio.ensure_future(server.client.observe("burst", "/3/0/9"))
        await until(lambda: bool(peer.requests))
        get = peer.requests[0]
        assert get.option(OBSERVE) == [b""] and get.option(wire.URI_PATH) == [b"3", b"0", b"9"]
        peer.send(_content(wire.ACK, get.mid, get.token, 1, 100))
        obs = await asyncio.wait_for(observing, 5)
        assert obs.value == {BATTERY: 100}
        sub = server.events.subscribe(types={"notification"})
        for i in range(BURST):  # back to back: all queued in the server's socket before it reads one
            peer.send(_content(wire.NON, 0x0300 + i, get.token, 2 + i, i))
        seen = [await wait_event(sub, lambda e: e.endpoint == "burst") for _ in range(BURST)]
        assert [e.data["values"] for e in seen] == [content_to_json({BATTERY: i}) for i in range(BURST)]
        assert obs.value == {BATTERY: BURST - 1} and obs.notifications == BURST
    finally:
        peer.close()
        await server.stop()
