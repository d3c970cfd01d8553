"""Crash safety on PostgreSQL: ``tinymlaas serve --store postgres`` as a real process, registrations and an OTA
job through it, SIGKILL, then the database (read directly) and a restarted server still have every committed
registration and the job's state and history."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import httpx

from tests.integration.server import wire
from tests.support.postgres import drop_pg_database, make_pg_database

N = 30


async def _start(data_dir: Path, dsn: str, port: int = 0) -> tuple[asyncio.subprocess.Process, int, int, str | None]:
    env = {**os.environ, "TINYMLAAS_LOGGING__LEVEL": "warning", "TINYMLAAS_STORE__BATCH_WINDOW_MS": "5",
           "TINYMLAAS_OTA__TIMEOUT_S": "5", "TINYMLAAS_OTA__MAX_RETRIES": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from lwm2m_server.cli import main; main()", "serve", "--store", "postgres",
        "--store-dsn", dsn, "--coap-host", "127.0.0.1", "--coap-port", str(port), "--http-port", "0",
        "--data-dir", str(data_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    token = None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "server exited before READY"
        if line.startswith("ADMIN_TOKEN "):
            token = line.split()[1]
        if line.startswith("READY"):
            fields = dict(f.split("=") for f in line.split()[1:])
            return proc, int(fields["coap"]), int(fields["http"]), token


async def _register(peer: wire.UdpPeer, i: int, ep: str) -> bytes:
    peer.send(wire.register(i, i.to_bytes(2, "big"), [f"ep={ep}", "lt=600"], b"</3/0>,</5/0>"))
    resp = await peer.recv(5)
    assert resp.code_str == "2.01"
    return resp.option(wire.LOCATION_PATH)[1]


async def test_sigkill_keeps_registrations_and_job_state(tmp_path: Path) -> None:
    dsn = await make_pg_database()
    data = tmp_path / "data"
    proc, port, http_port, token = await _start(data, dsn)
    assert token is not None  # a fresh database: first start
    peer = await wire.UdpPeer.open(port)
    device = await wire.UdpPeer.open(port)  # the OTA target on its own socket: the server's requests go there
    try:
        locations = {f"pg-{i}": await _register(peer, i, f"pg-{i}") for i in range(N)}
        await _register(device, 500, "pg-ota")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", headers=headers, timeout=30) as http:
            up = await http.post("/api/packages", params={"kind": "firmware", "name": "fw"}, content=b"\x01" * 300)
            assert up.status_code == 201, up.text
            started = await http.post("/api/devices/pg-ota/update", json={"firmware": up.json()["sha256"]})
            assert started.status_code == 202, started.text
            job_id = started.json()["job"]
            for _ in range(200):  # the device answers 4.04 to everything: the job ends (failed) on its own
                status = (await http.get("/api/devices/pg-ota/update")).json()
                if status["job"]["phase"] in ("failed", "succeeded", "cancelled"):
                    break
                await asyncio.sleep(0.1)
            phase, history = status["job"]["phase"], [h["to_phase"] for h in status["history"]]
            assert phase == "failed" and history[0] == "queued" and len(history) >= 2
        await asyncio.sleep(0.3)  # > batch window: the write-behind registrations are committed
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

        conn = await asyncpg.connect(dsn)
        try:
            rows = {r["endpoint"]: r["reg_id"] for r in await conn.fetch("SELECT endpoint, reg_id FROM registrations")}
            job = await conn.fetchrow("SELECT endpoint, phase FROM ota_jobs WHERE id = $1", job_id)
            stored = [r["to_phase"] for r in await conn.fetch(
                "SELECT to_phase FROM ota_job_history WHERE job_id = $1 ORDER BY id", job_id)]
        finally:
            await conn.close()
        assert {ep: rid.encode() for ep, rid in rows.items() if ep != "pg-ota"} == locations
        assert "pg-ota" in rows
        assert (job["endpoint"], job["phase"]) == ("pg-ota", phase)
        assert stored == history

        proc, port2, http_port, token2 = await _start(data, dsn, port)
        assert port2 == port and token2 is None  # not a first start: the tokens are in the database
        peer.send(wire.build(wire.CON, wire.POST, 5000, b"u", [(wire.URI_PATH, b"rd"),
                                                                (wire.URI_PATH, locations["pg-7"])]))  # fmt: skip
        assert (await peer.recv(5)).code_str == "2.04"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", headers=headers, timeout=30) as http:
            again = (await http.get("/api/devices/pg-ota/update")).json()
        assert again["job"]["id"] == job_id and again["job"]["phase"] == phase
    finally:
        peer.close()
        device.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 15)
        await drop_pg_database(dsn)
