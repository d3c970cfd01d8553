"""Real ``tinymlaas serve`` processes on one PostgreSQL database (a cluster on loopback), for the cluster tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

FAST_CLUSTER_ENV = {
    "TINYMLAAS_LOGGING__LEVEL": "warning",
    "TINYMLAAS_STORE__BATCH_WINDOW_MS": "5",
    "TINYMLAAS_CLUSTER__HEARTBEAT_S": "0.3",
    "TINYMLAAS_CLUSTER__NODE_TIMEOUT_S": "1.5",
}


@dataclass
class Node:
    proc: asyncio.subprocess.Process
    coap_port: int
    http_port: int
    token: str | None  # the ADMIN_TOKEN line: only the first node on a fresh database prints one
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def node_id(self) -> str:
        return (self.data_dir / "node_id").read_text().strip()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                await self.kill()


async def start_node(data_dir: Path, dsn: str, env: dict[str, str] | None = None, *, coap_port: int = 0,
                     http_port: int = 0) -> Node:
    """Start a node; a restart passes the data dir (same node id) and ports it had (nginx's upstream is fixed).
    ``dsn`` "" = the SQLite store in the data dir (a single node, e.g. a benchmark's baseline). Nodes started
    beside each other share ``<parent>/secrets`` (as an operator gives every node the same signing key and
    credentials key) unless ``env`` names another secrets dir."""
    shared = {"TINYMLAAS_SERVER__SECRETS_DIR": str(data_dir.parent / "secrets")}
    full_env = {**os.environ, **FAST_CLUSTER_ENV, **shared, **(env or {})}
    log = (data_dir.parent / f"{data_dir.name}.log").open("ab")  # the node's log, beside its data dir
    try:
        proc = await _spawn(data_dir, dsn, full_env, log, coap_port, http_port)
    finally:
        log.close()  # the child has its own descriptor
    assert proc.stdout is not None
    token = None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "server exited before READY"
        if line.startswith("ADMIN_TOKEN "):
            token = line.split()[1]
        if line.startswith("READY"):
            fields = dict(f.split("=") for f in line.split()[1:])
            return Node(proc, int(fields["coap"]), int(fields["http"]), token, data_dir)


async def run_refused_node(data_dir: Path, dsn: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """A node expected not to start: its exit code and its stderr (the CLI's message); its secrets are its own
    (in its data dir) unless ``env`` says otherwise."""
    full_env = {**os.environ, **FAST_CLUSTER_ENV, **(env or {})}
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    path = data_dir.parent / f"{data_dir.name}.log"
    with path.open("wb") as log:
        proc = await _spawn(data_dir, dsn, full_env, log, 0, 0)
    assert proc.stdout is not None
    out = await asyncio.wait_for(proc.stdout.read(), 60)
    assert b"READY" not in out, "the node started"
    code = await asyncio.wait_for(proc.wait(), 30)
    return code, path.read_text()


async def _spawn(data_dir: Path, dsn: str, env: dict[str, str], log: IO[bytes], coap_port: int, http_port: int
                 ) -> asyncio.subprocess.Process:  # fmt: skip
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from lwm2m_server.cli import main; main()", "serve",
        *(["--store", "postgres", "--store-dsn", dsn] if dsn else ["--store", "sqlite"]),
        "--coap-host", "127.0.0.1", "--coap-port", str(coap_port), "--http-port", str(http_port),
        "--data-dir", str(data_dir), stdout=asyncio.subprocess.PIPE, stderr=log,
        env=env,
    )  # fmt: skip
