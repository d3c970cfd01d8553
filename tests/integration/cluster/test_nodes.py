"""Two real ``tinymlaas serve`` processes on one PostgreSQL database: each records itself in ``nodes`` with a
heartbeat, each registration records the node it came through, ownership moves when a device registers again
through the other node (and the old node's expiry of its stale copy does not delete the row), ``GET /api/cluster``
and ``tinymlaas cluster status`` show the same view on every node, and a SIGKILLed node is reported dead within
the node timeout while its devices stay counted to it until they register elsewhere."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.integration.server import wire
from tests.support.nodes import Node, start_node
from tests.support.postgres import drop_pg_database, make_pg_database


async def _register(port: int, mid: int, ep: str, lt: int = 600) -> wire.UdpPeer:
    peer = await wire.UdpPeer.open(port)
    peer.send(wire.register(mid, mid.to_bytes(2, "big"), [f"ep={ep}", f"lt={lt}"], b"</3/0>"))
    resp = await peer.recv(5)
    assert resp.code_str == "2.01", resp.code_str
    return peer


async def _view(node: Node, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=node.url, headers={"Authorization": f"Bearer {token}"}) as http:
        r = await http.get("/api/cluster")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def _by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node_id"]: n for n in view["nodes"]}


async def _owners(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["endpoint"]: r["node_id"] for r in await conn.fetch("SELECT endpoint, node_id FROM registrations")}
    finally:
        await conn.close()


def _cli_status(node: Node, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from lwm2m_server.cli import main; main()", "cluster", "status",
         "--server", node.url], env={**os.environ, "TINYMLAAS_TOKEN": token, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_two_nodes_heartbeat_ownership_and_death(tmp_path: Path) -> None:
    dsn = await make_pg_database()
    grace = {"TINYMLAAS_SERVER__REGISTRATION_GRACE_S": "0"}
    a = await start_node(tmp_path / "a", dsn, grace)
    b = await start_node(tmp_path / "b", dsn, grace)
    peers: list[wire.UdpPeer] = []
    try:
        assert a.token is not None and b.token is None  # one database, one initial admin token
        token = a.token
        assert a.node_id != b.node_id
        peers.append(await _register(a.coap_port, 1, "dev-a"))
        peers.append(await _register(a.coap_port, 2, "dev-move", lt=2))  # short: a will expire its copy
        peers.append(await _register(b.coap_port, 3, "dev-b"))
        peers.append(await _register(b.coap_port, 4, "dev-move"))  # registers again, through b
        await asyncio.sleep(3.0)  # dev-move's lifetime at a has passed (grace 0): a expired its stale copy
        assert await _owners(dsn) == {"dev-a": a.node_id, "dev-b": b.node_id, "dev-move": b.node_id}

        for asked in (a, b):  # every node answers for the whole cluster
            view = await _view(asked, token)
            nodes = _by_id(view)
            assert set(nodes) == {a.node_id, b.node_id}
            assert all(n["alive"] for n in nodes.values())
            assert nodes[a.node_id]["devices"] == 1 and nodes[b.node_id]["devices"] == 2
            assert nodes[asked.node_id]["self"] and view["node_id"] == asked.node_id
            assert nodes[b.node_id]["info"]["coap_port"] == b.coap_port
            assert view["devices"] == 3
        done = await asyncio.to_thread(_cli_status, b, token)
        assert done.returncode == 0, done.stderr
        assert a.node_id in done.stdout and b.node_id in done.stdout and "alive" in done.stdout

        await b.kill()
        killed_at = time.monotonic()
        while True:  # bounded: the node timeout (1.5 s) plus one heartbeat period
            nodes = _by_id(await _view(a, token))
            if not nodes[b.node_id]["alive"]:
                break
            assert time.monotonic() - killed_at < 5.0, nodes
            await asyncio.sleep(0.2)
        assert nodes[a.node_id]["alive"] and nodes[b.node_id]["devices"] == 2  # until they register elsewhere
        dead = await asyncio.to_thread(_cli_status, a, token)
        assert dead.returncode == 1 and "not alive" in dead.stderr and b.node_id in dead.stderr

        peers.append(await _register(a.coap_port, 5, "dev-b"))  # the device comes back through a
        await asyncio.sleep(0.3)
        assert (await _owners(dsn))["dev-b"] == a.node_id
        nodes = _by_id(await _view(a, token))
        assert nodes[a.node_id]["devices"] == 2 and nodes[b.node_id]["devices"] == 1

        await a.stop()  # a clean stop removes the node's row
        conn = await asyncpg.connect(dsn)
        try:
            assert [r["node_id"] for r in await conn.fetch("SELECT node_id FROM nodes")] == [b.node_id]
        finally:
            await conn.close()
    finally:
        for peer in peers:
            peer.close()
        await a.kill()
        await b.kill()
        await drop_pg_database(dsn)


async def test_second_process_on_the_same_node_id_is_refused(tmp_path: Path) -> None:
    dsn = await make_pg_database()
    a = await start_node(tmp_path / "a", dsn)
    try:
        twin = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from lwm2m_server.cli import main; main()", "serve", "--store", "postgres",
            "--store-dsn", dsn, "--coap-host", "127.0.0.1", "--coap-port", "0", "--http-port", "0",
            "--data-dir", str(a.data_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(twin.communicate(), 60)
        assert twin.returncode == 1 and b"READY" not in out
        assert f"node id {a.node_id!r} is in use by process {a.proc.pid}".encode() in err, err[-500:]
        assert a.proc.returncode is None  # the first node keeps running
        view = await _view(a, a.token or "")
        assert [n["node_id"] for n in view["nodes"]] == [a.node_id]
    finally:
        await a.kill()
        await drop_pg_database(dsn)
