"""The server socket's two CoAP stacks (aiocoap and the fast client that carries Block1 pushes) towards one
device, over real UDP to a hand-driven device: NSTART = 1 across both (RFC 7252 §4.7), no second CON while one
is outstanding, whichever stack sent it. (Message ids across both stacks: test_message_ids.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.coap.errors import DeviceTimeout
from lwm2m_server.coap.exchange import RawResponse
from lwm2m_server.protocol import coapmsg as m
from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.nstart_support import push_block, registered_device

EP = "nstart"


class Device(wire.UdpPeer):
    """Answers nothing by itself: each request from the server lands in ``incoming``, in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self.incoming: asyncio.Queue[wire.Parsed] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = wire.parse(data)
        if 1 <= msg.code < 32:
            self.incoming.put_nowait(msg)
        else:
            self.inbox.put_nowait(data)

    async def request(self) -> wire.Parsed:
        return await asyncio.wait_for(self.incoming.get(), 10)

    async def no_request(self, wait: float = 1.0) -> bool:
        """Nothing more arrives for ``wait`` s (a retransmission would come after ACK_TIMEOUT, 2 s at least)."""
        try:
            await asyncio.wait_for(self.incoming.get(), wait)
        except TimeoutError:
            return True
        return False

    def answer(self, req: wire.Parsed) -> None:
        if req.code == wire.PUT:  # a Block1 push block: 2.04 with its Block1
            self.send(wire.build(wire.ACK, 0x44, req.mid, req.token, [(m.BLOCK1, req.option(m.BLOCK1)[0])]))
        else:
            self.send(wire.build(wire.ACK, 0x45, req.mid, req.token, [(wire.CONTENT_FORMAT, b"")], b"Sim"))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[LwM2MServer, Device]]:
    async with registered_device(tmp_path, Device, EP) as (server, dev):
        yield server, dev


def _push_block(server: LwM2MServer) -> asyncio.Task[RawResponse]:
    return push_block(server, EP)


def _read(server: LwM2MServer) -> asyncio.Task[RawResponse]:
    """A plain GET: carried by aiocoap."""
    return asyncio.create_task(server.client.raw_request(EP, "GET", "/3/0/0"))


@pytest.mark.parametrize("first", ["fast", "aiocoap"])
async def test_no_second_con_while_one_is_outstanding_across_both_stacks(
    setup: tuple[LwM2MServer, Device], first: str
) -> None:
    server, dev = setup
    fast_requests = server.client.fast.requests if server.client.fast is not None else 0
    starts = [_push_block, _read] if first == "fast" else [_read, _push_block]
    one = starts[0](server)
    req1 = await dev.request()
    two = starts[1](server)  # the other stack, same device, while req1 is unanswered
    assert await dev.no_request(), "a second CON went out while the first was outstanding"
    dev.answer(req1)
    req2 = await dev.request()
    dev.answer(req2)
    results = [await asyncio.wait_for(t, 10) for t in (one, two)]
    assert [r.code for r in results] == (["2.04", "2.05"] if first == "fast" else ["2.05", "2.04"])
    assert [r.code for r in (req1, req2)] == ([wire.PUT, wire.GET] if first == "fast" else [wire.GET, wire.PUT])
    assert req1.mtype == req2.mtype == wire.CON and req1.mid != req2.mid
    assert server.client.fast is not None and server.client.fast.requests == fast_requests + 1  # it carried the PUT


async def test_waiting_for_the_turn_counts_in_the_request_timeout(setup: tuple[LwM2MServer, Device]) -> None:
    """A read queued behind an unanswered push block fails after its own timeout, while the block is still
    outstanding (as a request waiting in aiocoap's own backlog did), not after the block's."""
    server, dev = setup
    block = _push_block(server)  # the server's request_timeout_s: 5 s
    req = await dev.request()
    with pytest.raises(DeviceTimeout):
        await server.client.raw_request(EP, "GET", "/3/0/0", timeout=0.5)
    assert not block.done()
    dev.answer(req)
    assert (await asyncio.wait_for(block, 10)).code == "2.04"
    late = _read(server)  # the turn passed on: the next request goes out
    dev.answer(await dev.request())
    assert (await asyncio.wait_for(late, 10)).code == "2.05"
