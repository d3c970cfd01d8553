"""NSTART = 1 (RFC 7252 §4.7) between the CONs aiocoap sends outside any request helper's turn (a separate
response of an aiocoap resource, a bootstrap request, a Block2 request completing a notification) and the fast
client, over real UDP to a hand-driven device that counts the server's outstanding CONs (sent to it and not yet
acknowledged).

A resource that answers after aiocoap's EMPTY_ACK_DELAY (0.1 s) gets its request acknowledged with an empty ACK
and its response sent later as a CON. aiocoap's backlog keeps that CON apart from aiocoap's own requests, but
not from a fast request (a Block1 push block): the socket's message manager takes the device's turn for it, so
it waits while a block is outstanding, and a block waits while it is unacknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiocoap
import aiocoap.resource as resource
import pytest
from aiocoap.numbers.codes import Code

from lwm2m_server.coap.exchange import RawResponse
from lwm2m_server.coap.messages import PeerMessageManager
from lwm2m_server.protocol import coapmsg as m
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import until
from tests.integration.server.nstart_support import push_block, registered_device

EP = "separate"
OBSERVE = 6
SLOW_S = 0.3  # above aiocoap's EMPTY_ACK_DELAY: answered separately


class Slow(resource.Resource):
    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        await asyncio.sleep(SLOW_S)
        return aiocoap.Message(code=Code.CONTENT, payload=b"late")


class Device(wire.UdpPeer):
    """Answers nothing by itself. Every CON from the server is outstanding until the test acknowledges it;
    ``most`` is the largest number outstanding at once (retransmissions of one message count once)."""

    def __init__(self) -> None:
        super().__init__()
        self.cons: asyncio.Queue[wire.Parsed] = asyncio.Queue()
        self.outstanding: set[int] = set()
        self.most = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = wire.parse(data)
        if msg.mtype == wire.CON:
            if msg.mid not in self.outstanding:
                self.outstanding.add(msg.mid)
                self.most = max(self.most, len(self.outstanding))
                self.cons.put_nowait(msg)
        else:
            self.inbox.put_nowait(data)

    async def con(self, wait: float = 5.0) -> wire.Parsed:
        return await asyncio.wait_for(self.cons.get(), wait)

    async def no_con(self, wait: float = 1.0) -> bool:
        """No new CON within ``wait`` s (a retransmission would come after ACK_TIMEOUT, 2 s at least)."""
        try:
            await asyncio.wait_for(self.cons.get(), wait)
        except TimeoutError:
            return True
        return False

    def acknowledge(self, msg: wire.Parsed, code: int = 0, options: list[tuple[int, bytes]] | None = None,
                    payload: bytes = b"") -> None:  # fmt: skip
        self.outstanding.discard(msg.mid)
        self.send(wire.build(wire.ACK, code, msg.mid, msg.token if code else b"", options or [], payload))

    def answer_block(self, req: wire.Parsed) -> None:
        assert req.code == wire.PUT
        self.acknowledge(req, 0x44, [(m.BLOCK1, req.option(m.BLOCK1)[0])])

    async def slow_request(self, mid: int, token: bytes) -> None:
        """POST /slow; returns once the server's empty ACK is in (the response comes separately)."""
        self.send(wire.build(wire.CON, wire.POST, mid, token, [(wire.URI_PATH, b"slow")]))
        ack = wire.parse(await asyncio.wait_for(self.inbox.get(), 2))
        assert (ack.mtype, ack.code, ack.mid) == (wire.ACK, 0, mid)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[LwM2MServer, Device]]:
    async with registered_device(tmp_path, Device, EP, {("slow",): Slow()}) as (server, dev):
        yield server, dev


def _manager(server: LwM2MServer) -> PeerMessageManager:
    assert server.coap_context is not None
    managers = [t.token_interface for t in server.coap_context.request_interfaces
                if isinstance(getattr(t, "token_interface", None), PeerMessageManager)]  # fmt: skip
    assert len(managers) == 1
    return managers[0]


def _push_block(server: LwM2MServer) -> asyncio.Task[RawResponse]:
    return push_block(server, EP)


async def test_separate_response_waits_for_an_outstanding_fast_block(setup: tuple[LwM2MServer, Device]) -> None:
    server, dev = setup
    block_task = _push_block(server)
    block = await dev.con()
    assert block.code == wire.PUT
    await dev.slow_request(0x0201, b"\x5a")
    assert await dev.no_con(SLOW_S + 0.7), "the separate response went out while a fast block was outstanding"
    assert _manager(server).deferred_cons == 1
    dev.answer_block(block)
    assert (await asyncio.wait_for(block_task, 5)).code == "2.04"
    response = await dev.con()  # the turn passed on: now the separate response
    assert (response.mtype, response.code, response.token, response.payload) == (wire.CON, 0x45, b"\x5a", b"late")
    dev.acknowledge(response)
    assert dev.most == 1


async def test_fast_block_waits_for_an_unacknowledged_separate_response(setup: tuple[LwM2MServer, Device]) -> None:
    server, dev = setup
    await dev.slow_request(0x0202, b"\x5b")
    response = await dev.con()
    assert (response.code, response.token) == (0x45, b"\x5b")
    block_task = _push_block(server)  # the separate response is not acknowledged yet
    assert await dev.no_con(1.0), "a fast block went out while a separate response was unacknowledged"
    dev.acknowledge(response)
    block = await dev.con()
    assert block.code == wire.PUT
    dev.answer_block(block)
    assert (await asyncio.wait_for(block_task, 5)).code == "2.04"
    assert dev.most == 1 and _manager(server).deferred_cons == 0
    assert dev.transport is not None and server.client.turns is not None
    port = dev.transport.get_extra_info("sockname")[1]
    assert not server.client.turns.busy(("::ffff:127.0.0.1", port))  # every turn given back


async def test_bootstrap_request_waits_for_an_outstanding_fast_block(setup: tuple[LwM2MServer, Device]) -> None:
    """A bootstrap sequence's requests (send_to_remote, aiocoap) to an address with a fast block outstanding:
    the same device socket, still registered, asks to be bootstrapped (e.g. it lost its credentials)."""
    server, dev = setup
    await server.bootstrap_configs.put({"endpoint": EP, "server_uri": "coap://10.1.2.3:5683",
                                        "security_mode": "nosec"})  # fmt: skip
    block_task = _push_block(server)
    block = await dev.con()
    bootstrap_request = [(wire.URI_PATH, b"bs"), (wire.URI_QUERY, f"ep={EP}".encode())]
    dev.send(wire.build(wire.CON, wire.POST, 0x0203, b"\x5c", bootstrap_request))
    ack = wire.parse(await asyncio.wait_for(dev.inbox.get(), 2))
    assert (ack.mtype, ack.mid) == (wire.ACK, 0x0203) and ack.code in (0, 0x44)  # 2.04, or empty: it follows
    assert await dev.no_con(1.0), "the bootstrap sequence sent a CON while a fast block was outstanding"
    dev.answer_block(block)
    assert (await asyncio.wait_for(block_task, 5)).code == "2.04"
    first = await dev.con()
    if first.code == 0x44:  # the separate 2.04, then the sequence
        dev.acknowledge(first)
        first = await dev.con()
    assert (first.code, first.option(wire.URI_PATH)) == (wire.DELETE, [b"0"])
    dev.acknowledge(first, 0x42)  # 2.02 Deleted
    assert dev.most == 1
    server.bootstrap.cancel_all()


async def test_a_separate_response_to_a_device_that_went_away_gives_the_turn_back(
    setup: tuple[LwM2MServer, Device],
) -> None:
    """The turn a separate response holds ends with its exchange, here on the ICMP port-unreachable of its first
    retransmission (after ACK_TIMEOUT, 2-3 s), so the next request to that address is not stuck behind it."""
    server, dev = setup
    await dev.slow_request(0x0204, b"\x5d")
    response = await dev.con()
    assert dev.transport is not None and server.client.turns is not None
    peer = ("::ffff:127.0.0.1", dev.transport.get_extra_info("sockname")[1])
    assert response.code == 0x45 and server.client.turns.busy(peer)
    dev.close()  # never acknowledged
    for _ in range(80):
        if not server.client.turns.busy(peer):
            break
        await asyncio.sleep(0.1)
    assert not server.client.turns.busy(peer)


async def test_block2_request_completing_a_notification_waits_for_an_outstanding_fast_block(
    setup: tuple[LwM2MServer, Device],
) -> None:
    """The rest of a notification in blocks is asked for with GETs long after the observation's first request
    gave its turn back: they take the turn like any CON. With the fast client on, the observation is the fast
    path's and so are these GETs (the fast client waits for the turn; aiocoap defers nothing); without it they
    are aiocoap's blockwise layer's, deferred as uncovered CONs."""
    server, dev = setup
    observing = asyncio.ensure_future(server.client.observe(EP, "/3/0/9"))
    get = await dev.con()
    assert get.option(OBSERVE) == [b""]
    dev.acknowledge(get, 0x45, [(OBSERVE, b"\x01"), (wire.CONTENT_FORMAT, b"")], b"100")
    obs = await asyncio.wait_for(observing, 5)
    block_task = _push_block(server)
    block = await dev.con()
    assert block.code == wire.PUT
    first = [(OBSERVE, b"\x02"), (wire.CONTENT_FORMAT, b""), (m.BLOCK2, m.block_option(0, True, 0))]
    dev.send(wire.build(wire.NON, 0x45, 0x0205, get.token, first, b"1" * 16))
    assert await dev.no_con(1.0), "a Block2 request went out while a fast block was outstanding"
    assert _manager(server).deferred_cons == 0  # the fast client's own GET waits for the turn, not aiocoap
    dev.answer_block(block)
    assert (await asyncio.wait_for(block_task, 5)).code == "2.04"
    rest = await dev.con()
    assert (rest.code, rest.option(m.BLOCK2)) == (wire.GET, [m.block_option(1, False, 0)])
    dev.acknowledge(rest, 0x45, [(wire.CONTENT_FORMAT, b""), (m.BLOCK2, m.block_option(1, False, 0))], b"23")
    await until(lambda: obs.notifications == 1)
    assert obs.value == {LwM2MPath.parse("/3/0/9"): int("1" * 16 + "23")} and dev.most == 1
    assert dev.transport is not None and server.client.turns is not None
    assert not server.client.turns.busy(("::ffff:127.0.0.1", dev.transport.get_extra_info("sockname")[1]))
    obs.cancel()
