"""A whole cluster on loopback for the cluster tests: a fresh PostgreSQL database, N real ``tinymlaas serve``
nodes on it, the sample ``config/nginx-lwm2m.conf`` in front (rendered with the nodes' real ports) and a fleet of
simulated devices (``simulator/``) registering through nginx's one address.

The sample hashes ``$remote_addr``; every test device is on 127.0.0.1, so :func:`render_nginx` hashes address
*and* port. Skipped, saying why, when nginx or its stream module is missing (``.ci/run`` installs both).
Teardown (devices, nginx, nodes, database) runs even when the test fails."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwm2m_server import resources
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.support.nodes import Node, start_node
from tests.support.postgres import drop_pg_database, make_pg_database

SAMPLE = resources.DEFAULT_CONFIG.parent / "nginx-lwm2m.conf"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def nginx_binary() -> str:
    """The nginx binary, or skip the test saying what to install."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None or not STREAM_MODULE.exists():
        pytest.skip("nginx with the stream module is not installed (apt install nginx-light libnginx-mod-stream)")
    return binary


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render_nginx(ports: list[int], listen: int) -> str:
    """The sample config with these upstream ports, listening on 127.0.0.1:``listen``, hashing addr:port."""
    text = SAMPLE.read_text()
    text, n = re.subn(r"(?m)^(\s*)server 127\.0\.0\.1:\d+( [^;\n]*)?;\n(?:\s*server 127\.0\.0\.1:\d+( [^;\n]*)?;\n)*",
                      lambda m: "".join(f"{m.group(1)}server 127.0.0.1:{p}{m.group(2) or ''};\n" for p in ports),
                      text)
    assert n == 1, "the sample's upstream block changed shape"
    text, n = re.subn(r"hash \$remote_addr consistent;", 'hash "$remote_addr:$remote_port" consistent;', text)
    assert n == 1
    text, n = re.subn(r"listen 5683 udp", f"listen 127.0.0.1:{listen} udp", text)
    assert n == 1
    return text


def start_nginx(workdir: Path, ports: list[int], listen: int) -> subprocess.Popen[bytes]:
    """nginx in the foreground with the rendered sample; its error log is ``workdir/nginx.log``."""
    binary = nginx_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(render_nginx(ports, listen))
    return subprocess.Popen([binary, "-p", str(workdir), "-c", str(conf), "-g",
                             f"daemon off; pid {workdir / 'nginx.pid'}; error_log {workdir / 'nginx.log'} notice;"])


def stop_nginx(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Cluster:
    workdir: Path
    dsn: str
    nodes: list[Node]
    listen: int
    token: str
    nginx: subprocess.Popen[bytes]
    devices: list[SimulatedDevice] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def server_uri(self) -> str:
        """Where devices register: nginx's address."""
        return f"coap://127.0.0.1:{self.listen}"

    def http(self, node: Node, timeout: float = 30.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=node.url, headers={"Authorization": f"Bearer {self.token}"},
                                 timeout=timeout)

    def alive_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.proc.returncode is None]

    async def status(self, node: Node | None = None) -> dict[str, Any]:
        """``GET /api/cluster`` at ``node`` (default: the first live one)."""
        async with self.http(node or self.alive_nodes()[0]) as http:
            r = await http.get("/api/cluster")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def device_counts(self, node: Node | None = None) -> dict[str, int]:
        """Devices per node id, as the cluster view reports them."""
        return {n["node_id"]: int(n["devices"]) for n in (await self.status(node))["nodes"]}

    async def alive(self, node: Node | None = None) -> dict[str, bool]:
        return {n["node_id"]: bool(n["alive"]) for n in (await self.status(node))["nodes"]}

    async def local_endpoints(self, node: Node) -> set[str]:
        """The endpoints ``node`` holds a session for (its own registry: ``GET /api/devices`` is node-local)."""
        found: set[str] = set()
        async with self.http(node) as http:
            offset = 0
            while True:
                r = await http.get("/api/devices", params={"limit": 1000, "offset": offset})
                assert r.status_code == 200, r.text
                items = r.json()["items"]
                found.update(d["endpoint"] for d in items)
                if len(items) < 1000:
                    return found
                offset += len(items)

    async def owners(self) -> dict[str, Node]:
        """endpoint -> the live node holding its registration."""
        owned: dict[str, Node] = {}
        for node in self.alive_nodes():
            for ep in await self.local_endpoints(node):
                owned[ep] = node
        return owned

    async def owner(self, endpoint: str) -> Node | None:
        return (await self.owners()).get(endpoint)

    async def start_fleet(self, count: int, prefix: str = "dev", timeout: float = 30.0,
                          **config: Any) -> list[SimulatedDevice]:
        """``count`` simulated devices registering through nginx (``config``: more DeviceConfig fields);
        returns once all are registered."""
        first = len(self.devices)
        made = [SimulatedDevice(DeviceConfig(endpoint=f"{prefix}-{first + i}", serial=f"SN-{prefix}-{first + i}",
                                             **config), seed=first + i) for i in range(count)]
        self.devices.extend(made)
        await asyncio.wait_for(asyncio.gather(*(d.start(self.server_uri) for d in made)), timeout)
        return made

    async def kill(self, node: Node) -> None:
        """SIGKILL: no clean stop, its heartbeat row just ages."""
        await node.kill()

    async def stop(self, node: Node) -> None:
        """SIGTERM: a clean stop."""
        await node.stop()

    async def restart(self, node: Node) -> Node:
        """Start ``node`` again (same data dir, so the same node id; same ports, nginx's upstream is fixed)."""
        await node.stop()
        again = await start_node(node.data_dir, self.dsn, self.env, coap_port=node.coap_port,
                                 http_port=node.http_port)
        self.nodes[self.nodes.index(node)] = again
        return again

    def node_by_id(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)


@contextlib.asynccontextmanager
async def running_cluster(workdir: Path, nodes: int = 3, env: dict[str, str] | None = None
                          ) -> AsyncIterator[Cluster]:  # fmt: skip
    """``nodes`` nodes on a fresh database behind nginx; everything is torn down on exit, failing or not."""
    nginx_binary()  # skip before making anything
    dsn = await make_pg_database()
    started: list[Node] = []
    proxy: subprocess.Popen[bytes] | None = None
    cluster: Cluster | None = None
    try:
        started.append(await start_node(workdir / "node0", dsn, env))  # the first makes the schema and token
        started.extend(await asyncio.gather(*(start_node(workdir / f"node{i}", dsn, env) for i in range(1, nodes))))
        token = started[0].token
        assert token is not None, "the first node on a fresh database prints the admin token"
        listen = free_udp_port()
        proxy = start_nginx(workdir / "nginx", [n.coap_port for n in started], listen)
        await asyncio.sleep(0.3)
        assert proxy.poll() is None, (workdir / "nginx" / "nginx.log").read_text()
        cluster = Cluster(workdir, dsn, started, listen, token, proxy, env=dict(env or {}))
        yield cluster
    finally:
        if cluster is not None:
            await asyncio.gather(*(_quiet_stop(d) for d in cluster.devices))
            started = cluster.nodes
        if proxy is not None:
            stop_nginx(proxy)
        for node in started:
            with contextlib.suppress(Exception):
                await node.kill()
        await drop_pg_database(dsn)


async def _quiet_stop(device: SimulatedDevice) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(device.stop(deregister=False), 10)
