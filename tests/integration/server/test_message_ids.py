"""Message IDs toward each device are that device's own sequence (RFC 7252 §4.4), over real UDP.

With aiocoap's single counter for the whole socket, 65,536 messages to *other* devices within EXCHANGE_LIFETIME
(a 1,000-device push sends ~55,000) made the server reuse an id with a device that had seen it ~120 s before;
the device's stack answered the new request with its cached response to the old one (another token), and an OTA
confirmation read waited out its 60 s timeout. Here two raw devices get requests from both CoAP stacks on the
server socket (aiocoap: reads; the fast client: Block1 PUTs) and one device's ids must not move with the other's
traffic, nor collide between the two stacks.
"""

from __future__ import annotations

from pathlib import Path

from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import make_settings

LINKS = b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</5/0>'


async def _register(server: LwM2MServer, ep: str) -> wire.UdpPeer:
    peer = await wire.UdpPeer.open(server.coap_port)
    peer.send(wire.register(0x0100, ep.encode(), [f"ep={ep}", "lt=300", "lwm2m=1.1"], LINKS))
    assert (await peer.recv()).code_str == "2.01"
    return peer


async def test_ids_to_a_device_do_not_move_with_traffic_to_others(tmp_path: Path) -> None:
    server = LwM2MServer(make_settings(tmp_path / "data"), inventory=False)
    await server.start()
    a = b = None
    try:
        assert server.client.fast is not None and server.client.fast.connected
        a, b = await _register(server, "ids-a"), await _register(server, "ids-b")
        client = server.client

        async def read(ep: str) -> None:
            assert (await client.raw_request(ep, "GET", "/3/0")).code == "4.04"  # the raw device has nothing

        async def push_block(ep: str) -> None:  # Block1: carried by the fast client
            resp = await client.raw_request(ep, "PUT", "/5/0/0", b"x" * 16, block1=(0, 0, True))
            assert resp.code == "4.04"

        fast0 = client.fast.requests
        await read("ids-a")
        await push_block("ids-a")
        for _ in range(50):
            await read("ids-b")
            await push_block("ids-b")
        await push_block("ids-a")
        await read("ids-a")
        assert client.fast.requests - fast0 == 52
        mids = [r.mid for r in a.requests]
        assert len(mids) == 4
        assert mids == [(mids[0] + i) & 0xFFFF for i in range(4)]  # before: the 100 to ids-b came in between
        mids_b = [r.mid for r in b.requests]
        assert len(set(mids_b)) == len(mids_b) == 100
    finally:
        for peer in (a, b):
            if peer is not None:
                peer.close()
        await server.stop()
