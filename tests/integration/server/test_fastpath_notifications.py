"""Inbound Observe notifications on the fast-path socket (real UDP on loopback, hand-built datagrams).

The server's plain observations are matched by (peer, token) on the fast path: a CON notification gets an
empty ACK with its message id, a duplicate is acknowledged again and delivered once, a notification older than
the last (RFC 7641 §3.4) is dropped, a NON is delivered, and an unknown token or a cancelled observation's
notification goes on to aiocoap, which answers RST. The observation is the fast path's alone (its request sent by
the fast client, no aiocoap task held for it): a notification in blocks (Block2, RFC 7959 §2.6) is completed by
the fast path, an error or a 2.xx without Observe ends it; with the fast path off aiocoap does all this. A burst
of notifications read in one wake-up of the batched transport reaches the server as one ``notification`` event
each, also when aiocoap carries them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lwm2m_server.coap.observation import Observation
from lwm2m_server.events import Subscription
from lwm2m_server.protocol.jsonvalues import content_to_json
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import make_settings, until, wait_event

OBSERVE = 6
BLOCK2 = 23
BATTERY = LwM2MPath.parse("/3/0/9")
BURST = 10


def _content(mtype: int, mid: int, token: bytes, observe: int, value: int) -> bytes:
    opts = [(OBSERVE, observe.to_bytes(3, "big").lstrip(b"\x00")), (wire.CONTENT_FORMAT, b"")]
    return wire.build(mtype, 0x45, mid, token, opts, str(value).encode())


@dataclass
class Observed:
    server: LwM2MServer
    peer: wire.UdpPeer
    token: bytes
    obs: Observation
    events: Subscription

    async def event(self) -> dict[str, object]:
        ev = await wait_event(self.events, lambda e: e.endpoint == "dev")
        return dict(ev.data["values"])


async def _observed(tmp_path: Path, fast_path: bool) -> tuple[LwM2MServer, wire.UdpPeer, bytes, Observation]:
    server = LwM2MServer(make_settings(tmp_path, coap_fast_path=fast_path), inventory=False)
    await server.start()
    peer = await wire.UdpPeer.open(server.coap_port, answer_requests=False)
    peer.send(wire.register(0x0201, b"\x01", ["ep=dev", "lt=60", "lwm2m=1.1"], b'</>;rt="oma.lwm2m",</3/0>'))
    assert (await peer.recv()).code_str == "2.01"
    observing = asyncio.ensure_future(server.client.observe("dev", "/3/0/9"))
    await until(lambda: bool(peer.requests))
    get = peer.requests[0]
    assert get.option(OBSERVE) == [b""] and get.option(wire.URI_PATH) == [b"3", b"0", b"9"]
    peer.send(_content(wire.ACK, get.mid, get.token, 1, 100))
    obs = await asyncio.wait_for(observing, 5)
    assert obs.value == {BATTERY: 100}
    return server, peer, get.token, obs


@pytest.fixture(params=[True, False], ids=["fast", "aiocoap"])
async def observed(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Observed]:
    server, peer, token, obs = await _observed(tmp_path, request.param)
    try:
        yield Observed(server, peer, token, obs, server.events.subscribe(types={"notification"}))
    finally:
        peer.close()
        await server.stop()


@pytest.fixture
async def fast(tmp_path: Path) -> AsyncIterator[Observed]:
    server, peer, token, obs = await _observed(tmp_path, True)
    try:
        yield Observed(server, peer, token, obs, server.events.subscribe(types={"notification"}))
    finally:
        peer.close()
        await server.stop()


def _taken(o: Observed) -> int:
    """Notifications the fast path delivered."""
    assert o.server.fast_path is not None and o.server.fast_path.notifications is not None
    return o.server.fast_path.notifications.delivered


async def test_a_burst_of_notifications_is_delivered_whole(observed: Observed) -> None:
    o = observed
    for i in range(BURST):  # back to back: all queued in the server's socket before it reads one
        o.peer.send(_content(wire.NON, 0x0300 + i, o.token, 2 + i, i))
    assert [await o.event() for _ in range(BURST)] == [content_to_json({BATTERY: i}) for i in range(BURST)]
    assert o.obs.value == {BATTERY: BURST - 1} and o.obs.notifications == BURST


async def test_con_notification_gets_an_empty_ack_and_one_event(fast: Observed) -> None:
    fast.peer.send(_content(wire.CON, 0x0401, fast.token, 2, 55))
    assert await asyncio.wait_for(fast.peer.inbox.get(), 2) == bytes([0x60, 0x00, 0x04, 0x01])  # empty ACK
    assert await fast.event() == content_to_json({BATTERY: 55})
    assert _taken(fast) == 1 and fast.obs.value == {BATTERY: 55}


async def test_duplicate_con_is_acked_again_and_delivered_once(fast: Observed) -> None:
    dgram = _content(wire.CON, 0x0402, fast.token, 2, 56)
    fast.peer.send(dgram)
    fast.peer.send(dgram)  # the device did not see our ACK: the same message again
    ack = bytes([0x60, 0x00, 0x04, 0x02])
    assert [await asyncio.wait_for(fast.peer.inbox.get(), 2) for _ in range(2)] == [ack, ack]
    fast.peer.send(_content(wire.NON, 0x0403, fast.token, 3, 57))  # a later one: events are in order
    assert [await fast.event(), await fast.event()] == [content_to_json({BATTERY: v}) for v in (56, 57)]
    assert fast.server.fast_path is not None and fast.server.fast_path.notifications is not None
    assert fast.server.fast_path.notifications.duplicates == 1 and _taken(fast) == 2


async def test_stale_observe_number_is_dropped(fast: Observed) -> None:
    fast.peer.send(_content(wire.NON, 0x0404, fast.token, 10, 60))
    fast.peer.send(_content(wire.CON, 0x0405, fast.token, 9, 59))  # older than 10: acknowledged, not delivered
    fast.peer.send(_content(wire.NON, 0x0406, fast.token, 11, 61))
    assert await asyncio.wait_for(fast.peer.inbox.get(), 2) == bytes([0x60, 0x00, 0x04, 0x05])
    assert [await fast.event(), await fast.event()] == [content_to_json({BATTERY: v}) for v in (60, 61)]
    assert fast.server.fast_path is not None and fast.server.fast_path.notifications is not None
    assert fast.server.fast_path.notifications.stale == 1 and fast.obs.notifications == 2


async def test_non_notification_is_delivered_without_an_answer(fast: Observed) -> None:
    fast.peer.send(_content(wire.NON, 0x0407, fast.token, 2, 70))
    assert await fast.event() == content_to_json({BATTERY: 70})
    assert await fast.peer.nothing() and _taken(fast) == 1


async def test_unknown_token_goes_to_aiocoap_which_resets(fast: Observed) -> None:
    fast.peer.send(_content(wire.CON, 0x0408, b"\xde\xad\xbe\xef", 2, 80))
    rst = wire.parse(await asyncio.wait_for(fast.peer.inbox.get(), 2))
    assert (rst.mtype, rst.code, rst.mid) == (wire.RST, 0, 0x0408)
    assert _taken(fast) == 0 and fast.obs.notifications == 0


async def test_cancelled_observation_is_no_longer_matched(observed: Observed) -> None:
    o = observed
    o.obs.cancel()
    notifications = o.server.fast_path.notifications if o.server.fast_path is not None else None
    assert notifications is None or len(notifications) == 0
    answers = []
    for mid, observe in ((0x0409, 2), (0x040A, 3)):
        o.peer.send(_content(wire.CON, mid, o.token, observe, 90))
        answers.append(wire.parse(await asyncio.wait_for(o.peer.inbox.get(), 2)))
    # RST (RFC 7641 §3.6), the server delivers neither. On the fast path the observation was the fast path's
    # alone: aiocoap never knew its token and rejects the first one already; aiocoap's own observation still
    # acknowledges the first one (its lazy cancellation)
    first = wire.RST if notifications is not None else wire.ACK
    assert [(a.mtype, a.code, a.mid) for a in answers] == [(first, 0, 0x0409), (wire.RST, 0, 0x040A)]
    assert notifications is None or notifications.delivered == 0


async def test_block2_notification_is_completed_before_delivery(observed: Observed) -> None:
    o = observed
    first = [(OBSERVE, b"\x02"), (wire.CONTENT_FORMAT, b""), (BLOCK2, bytes([0x08]))]  # block 0 of more, 16 bytes
    o.peer.send(wire.build(wire.NON, 0x45, 0x0500, o.token, first, b"1" * 16))
    await until(lambda: len(o.peer.requests) > 1)
    get = o.peer.requests[1]  # the rest of the notification, asked for by the server
    assert (get.code, get.option(BLOCK2), get.option(wire.URI_PATH)) == (wire.GET, [b"\x10"], [b"3", b"0", b"9"])
    o.peer.send(wire.build(wire.ACK, 0x45, get.mid, get.token, [(wire.CONTENT_FORMAT, b""), (BLOCK2, b"\x10")],
                           b"23"))  # fmt: skip
    assert await o.event() == content_to_json({BATTERY: int("1" * 16 + "23")})  # whole, not the first block
    assert o.obs.value == {BATTERY: int("1" * 16 + "23")} and o.obs.notifications == 1
    notifications = o.server.fast_path.notifications if o.server.fast_path is not None else None
    # on the fast path the fast path completed it (aiocoap does not know the observation); else aiocoap did
    assert notifications is None or notifications.delivered == 1


def _aiocoap_observation_tasks() -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_coro().__qualname__.startswith("BlockwiseRequest"))  # type: ignore[union-attr]


async def test_aiocoap_holds_nothing_for_a_fast_observation(observed: Observed) -> None:
    fast = observed.server.fast_path is not None
    assert _aiocoap_observation_tasks() == (0 if fast else 2)  # aiocoap: its blockwise request's two tasks


@pytest.mark.parametrize("ending", ["4.04", "2.05 without Observe"])
async def test_the_device_ends_the_observation(observed: Observed, ending: str) -> None:
    o = observed
    if ending == "4.04":
        o.peer.send(wire.build(wire.CON, 0x84, 0x0600, o.token))
    else:
        o.peer.send(wire.build(wire.CON, 0x45, 0x0600, o.token, [(wire.CONTENT_FORMAT, b"")], b"77"))
    ack = wire.parse(await asyncio.wait_for(o.peer.inbox.get(), 2))
    assert (ack.mtype, ack.mid) == (wire.ACK, 0x0600)
    await until(lambda: o.obs.cancelled)
    assert o.server.client.coap_observations("dev") == []
    notifications = o.server.fast_path.notifications if o.server.fast_path is not None else None
    assert notifications is None or len(notifications) == 0  # unwatched: the next one is aiocoap's to RST
    o.peer.send(_content(wire.CON, 0x0601, o.token, 9, 1))
    rst = wire.parse(await asyncio.wait_for(o.peer.inbox.get(), 2))
    assert (rst.mtype, rst.mid) == (wire.RST, 0x0601)
