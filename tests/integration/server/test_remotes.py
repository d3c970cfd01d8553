"""Resolved remotes are cached per device address: requests reuse one resolved udp6 address, names and scoped
addresses stay aiocoap's, and a device that moved is reached at its new address."""

from __future__ import annotations

import asyncio

import pytest
from aiocoap.message import UndecidedRemote
from aiocoap.transports.udp6 import UDP6EndpointAddress

from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.coap.remotes import RemoteCache
from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire


async def test_cache_resolves_literals_once(server: LwM2MServer) -> None:
    cache = RemoteCache(server.coap_context, max_entries=2)
    a = cache.remote("127.0.0.1", 5000)
    assert isinstance(a, UDP6EndpointAddress) and a.sockaddr == ("::ffff:127.0.0.1", 5000, 0, 0)
    assert cache.remote("127.0.0.1", 5000) is a
    assert cache.remote("::1", 5000).sockaddr == ("::1", 5000, 0, 0)
    assert isinstance(cache.remote("localhost", 5000), UndecidedRemote)
    assert isinstance(cache.remote("fe80::1%lo", 5000), UndecidedRemote)
    cache.remote("127.0.0.2", 5000)  # LRU of 2: the oldest (127.0.0.1) goes
    assert len(cache) == 2 and cache.remote("127.0.0.1", 5000) is not a


async def test_cached_remote_answers_as_aiocoaps_own(server: LwM2MServer) -> None:
    """The cached remote keeps hostinfo/is_multicast; it equals and hashes as the remote aiocoap builds for a
    datagram from that address, so responses still match their requests."""
    cache = RemoteCache(server.coap_context)
    for host, port, hostinfo in (("127.0.0.1", 5683, "127.0.0.1"), ("127.0.0.1", 40001, "127.0.0.1:40001"),
                                 ("::1", 40002, "[::1]:40002"), ("224.0.1.187", 5683, "224.0.1.187")):
        remote = cache.remote(host, port)
        plain = UDP6EndpointAddress(remote.sockaddr, remote.interface)
        assert remote == plain and hash(remote) == hash(plain)
        assert remote.hostinfo == plain.hostinfo == hostinfo
        assert remote.is_multicast == plain.is_multicast == (host == "224.0.1.187")
        assert repr(remote) == repr(plain) and remote.uri_base == plain.uri_base
        assert remote.hostinfo is remote.hostinfo  # computed once
        for other in (UDP6EndpointAddress((remote.sockaddr[0], port + 1, 0, 0), remote.interface),
                      UDP6EndpointAddress(("::ffff:10.9.9.9", port, 0, 0), remote.interface),
                      UDP6EndpointAddress((remote.sockaddr[0], port, 7, 0), remote.interface)):
            assert (remote == other) is (plain == other) is (other == remote) is False
        scoped = UDP6EndpointAddress((*remote.sockaddr[:3], 3), remote.interface)  # scope id: ignored by both
        assert (remote == scoped) is (plain == scoped) is True
        assert {remote: 1}[plain] == 1 and {plain: 1}[remote] == 1


async def test_requests_follow_a_moved_device(server: LwM2MServer) -> None:
    first = await wire.UdpPeer.open(server.coap_port)
    moved = await wire.UdpPeer.open(server.coap_port)
    try:
        first.send(wire.register(1, b"m", ["ep=mover", "lt=60"], b"</3/0>"))
        loc = (await first.recv()).option(wire.LOCATION_PATH)
        await asyncio.sleep(0.3)  # the inventory's reads after Register
        before = len(first.requests)
        assert before > 0 and not moved.requests
        moved.send(wire.build(wire.CON, wire.POST, 2, b"u", [(wire.URI_PATH, v) for v in loc]))
        assert (await moved.recv()).code_str == "2.04"
        with pytest.raises(DeviceError) as err:  # the peer answers every request 4.04
            await server.client.read("mover", "/3/0/0", timeout=3.0)
        assert err.value.coap_code == "4.04"
        assert [v for n, v in moved.requests[-1].options if n == wire.URI_PATH] == [b"3", b"0", b"0"]
        assert len(first.requests) == before
    finally:
        first.close()
        moved.close()
