"""The sample ``config/nginx-lwm2m.conf`` in front of two real nodes on one PostgreSQL database (loopback):
devices registering through nginx's one address are spread over both nodes by the consistent hash, each
device's later datagrams (Update) reach the node that holds its registration, and the node's own requests to
the device (the inventory reads after Register, a REST read) travel back through nginx's session to the device.

The sample hashes ``$remote_addr``; every test device is on 127.0.0.1, so the test hashes address *and* port.
Skipped, saying why, when nginx or its stream module is missing (``.ci/run`` installs both)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.integration.server import wire
from tests.support.cluster import free_udp_port, nginx_binary, start_nginx, stop_nginx
from tests.support.nodes import start_node
from tests.support.postgres import drop_pg_database, make_pg_database

N = 24


async def test_nginx_spreads_devices_and_carries_server_requests_back(tmp_path: Path) -> None:
    nginx_binary()
    dsn = await make_pg_database()
    a = await start_node(tmp_path / "a", dsn)
    b = await start_node(tmp_path / "b", dsn)
    listen = free_udp_port()
    nginx = start_nginx(tmp_path / "nginx", [a.coap_port, b.coap_port], listen)
    peers: list[wire.UdpPeer] = []
    try:
        assert a.token is not None
        headers = {"Authorization": f"Bearer {a.token}"}
        await asyncio.sleep(0.5)
        assert nginx.poll() is None, (tmp_path / "nginx" / "nginx.log").read_text()
        locations = []
        for i in range(N):
            peer = await wire.UdpPeer.open(listen)
            peers.append(peer)
            peer.send(wire.register(i + 1, (i + 1).to_bytes(2, "big"), [f"ep=lb-{i}", "lt=600"], b"</3/0>"))
            resp = await peer.recv(5)
            assert resp.code_str == "2.01"
            locations.append(resp.option(wire.LOCATION_PATH)[1])
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=a.url, headers=headers, timeout=30) as http:
            view = (await http.get("/api/cluster")).json()
        counts = {n["node_id"]: n["devices"] for n in view["nodes"]}
        assert sum(counts.values()) == N and all(counts[n.node_id] > 0 for n in (a, b)), counts

        for i, (peer, loc) in enumerate(zip(peers, locations, strict=True)):  # Update: the owner knows the id
            peer.send(wire.build(wire.CON, 0x02, 1000 + i, b"u", [(wire.URI_PATH, b"rd"), (wire.URI_PATH, loc)]))
            assert (await peer.recv(5)).code_str == "2.04"
        assert all(peer.requests for peer in peers)  # each node's inventory reads came back through nginx

        for node in (a, b):  # a REST read at the owning node reaches the device through nginx (it answers 4.04)
            async with httpx.AsyncClient(base_url=node.url, headers=headers, timeout=30) as http:
                devices = [d["endpoint"] for d in (await http.get("/api/devices")).json()["items"]]
                ep = devices[0]
                peer = peers[int(ep.split("-")[1])]
                before = len(peer.requests)
                r = await http.get(f"/api/devices/{ep}/3/0/0")
            assert r.status_code == 502 and r.json()["error"] == "4.04", r.text
            assert len(peer.requests) > before
    finally:
        for peer in peers:
            peer.close()
        stop_nginx(nginx)
        await a.kill()
        await b.kill()
        await drop_pg_database(dsn)
