"""A registration storm's inventories queue behind ``[server] inventory_concurrency``: with 1, a second device
is not read while the first one's inventory is still waiting for a silent device; then it is."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import make_settings, until, wait_event

OBSERVE = 6


async def test_inventory_waits_for_a_free_slot(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d", inventory_concurrency=1, request_timeout_s=0.6)
    async with LwM2MServer(settings) as server:
        silent = await wire.UdpPeer.open(server.coap_port, answer_requests=False)
        talker = await wire.UdpPeer.open(server.coap_port)
        loop = asyncio.get_running_loop()
        try:
            silent.send(wire.register(1, b"s", ["ep=silent"], b"</3/0>"))
            assert (await silent.recv()).code_str == "2.01"
            talker.send(wire.register(2, b"t", ["ep=talker"], b"</3/0>"))
            assert (await talker.recv()).code_str == "2.01"
            t0 = loop.time()
            await asyncio.sleep(0.3)
            assert silent.requests and not talker.requests  # the one slot is the silent device's
            while not talker.requests:
                await asyncio.sleep(0.02)
                assert loop.time() - t0 < 3.0
            assert loop.time() - t0 >= 0.25  # only once the silent device's read timed out (0.6 s)
            assert server.inventory is not None
            for _ in range(100):
                if server.inventory.get("talker") is not None:
                    break
                await asyncio.sleep(0.02)
            assert server.inventory.get("talker") is not None
        finally:
            silent.close()
            talker.close()


async def test_default_concurrency_inventories_many_at_once(tmp_path: Path) -> None:
    async with LwM2MServer(make_settings(tmp_path / "d")) as server:
        assert server.settings.server.inventory_concurrency == 64
        peers = [await wire.UdpPeer.open(server.coap_port) for _ in range(5)]
        try:
            for i, p in enumerate(peers):
                p.send(wire.register(i, b"x", [f"ep=many-{i}"], b"</3/0>"))
            await asyncio.sleep(0.5)
            assert all(p.requests for p in peers)
        finally:
            for p in peers:
                p.close()


async def test_an_unreachable_device_is_asked_once(tmp_path: Path) -> None:
    """A device that is gone from its address (its socket closed: ICMP port unreachable, or no answer) is not
    asked the rest of its inventory: one read, not three reads and three observes (each of which costs aiocoap
    a scan of every exchange when its ICMP error comes back)."""
    settings = make_settings(tmp_path / "d", inventory_concurrency=1, request_timeout_s=0.5)
    async with LwM2MServer(settings) as server:
        sub = server.events.subscribe(types={"inventory"})
        gone = await wire.UdpPeer.open(server.coap_port, answer_requests=False)
        gone.send(wire.register(1, b"g", ["ep=gone"], b"</1/0>,</3/0>,</5/0>,</32001/0>,</32002/0>"))
        assert (await gone.recv()).code_str == "2.01"
        gone.close()
        ev = await wait_event(sub, lambda e: e.endpoint == "gone", timeout=5)
        assert ev.data["hardware_known"] is False
        talker = await wire.UdpPeer.open(server.coap_port)
        try:  # with one slot, the talker's inventory starts only once the gone device's has ended
            talker.send(wire.register(2, b"t", ["ep=talker"], b"</3/0>"))
            assert (await talker.recv()).code_str == "2.01"
            await wait_event(sub, lambda e: e.endpoint == "talker", timeout=5)
        finally:
            talker.close()
        out = {k: n for k, n in server.client.stats.snapshot().items() if k[0] == "out"}
        assert len(talker.requests) == 1 and out.get(("out", "GET", "4.04")) == 1
        unanswered = out.get(("out", "GET", "network"), 0) + out.get(("out", "GET", "timeout"), 0)
        assert (unanswered, sum(out.values())) == (1, 2), out


async def test_nothing_is_observed_below_an_instance_the_device_has_not(tmp_path: Path) -> None:
    """A device that answers its /5/0 read 4.04 Not Found is not asked to observe /5/0/3 and /5/0/5 (two more
    exchanges per device of a storm); /32002/0, which the inventory does not read, is still observed."""
    async with LwM2MServer(make_settings(tmp_path / "d")) as server:
        sub = server.events.subscribe(types={"inventory"})
        peer = await wire.UdpPeer.open(server.coap_port)  # answers every request 4.04
        try:
            peer.send(wire.register(1, b"p", ["ep=bare"], b"</3/0>,</5/0>,</32002/0>"))
            assert (await peer.recv()).code_str == "2.01"
            await wait_event(sub, lambda e: e.endpoint == "bare", timeout=5)
            await until(lambda: any(r.option(OBSERVE) for r in peer.requests))
            asked = []
            for r in peer.requests:
                path = "/" + "/".join(v.decode() for v in r.option(wire.URI_PATH))
                asked.append(("observe " if r.option(OBSERVE) else "read ") + path)
            assert asked == ["read /3/0", "read /5/0", "observe /32002/0"]
        finally:
            peer.close()
