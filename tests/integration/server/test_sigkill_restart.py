"""Crash recovery: ``tinymlaas serve`` as a real process, 100 registrations, SIGKILL, restart on the same data dir:
every unexpired registration is back (same id, same address), nothing is duplicated, expired ones are gone."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from tests.integration.server import wire

N = 100


async def _start(data_dir: Path, port: int = 0) -> tuple[asyncio.subprocess.Process, int]:
    env = {
        **os.environ,
        "TINYMLAAS_LOGGING__LEVEL": "warning",
        "TINYMLAAS_STORE__BATCH_WINDOW_MS": "5",
        "TINYMLAAS_SERVER__REGISTRATION_GRACE_S": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from lwm2m_server.cli import main; main()", "serve", "--no-http",
        "--coap-host", "127.0.0.1", "--coap-port", str(port), "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line, "server exited before READY"
        if line.startswith("READY"):
            return proc, int(line.split("coap=")[1].split()[0])


async def test_sigkill_and_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, port = await _start(data)
    locations: dict[str, bytes] = {}
    peer = await wire.UdpPeer.open(port)
    try:
        for i in range(N):
            lt = "1" if i % 10 == 0 else "600"  # every 10th registration will have expired by the restart
            peer.send(wire.register(i, i.to_bytes(2, "big"), [f"ep=crash-{i}", f"lt={lt}"], b"</3/0>"))
            resp = await peer.recv(5)
            assert resp.code_str == "2.01"
            locations[f"crash-{i}"] = resp.option(wire.LOCATION_PATH)[1]
        # re-register 5 of them: must replace, not duplicate
        for i in range(1, 6):
            peer.send(wire.register(1000 + i, b"\x99", [f"ep=crash-{i}", "lt=600"], b"</3/0>"))
            resp = await peer.recv(5)
            locations[f"crash-{i}"] = resp.option(wire.LOCATION_PATH)[1]
        await asyncio.sleep(0.3)  # > batch window: the write-behind batch is committed
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await asyncio.sleep(1.1)  # the lt=1 registrations are now past their lifetime

        proc, port2 = await _start(data, port)
        assert port2 == port
        db = sqlite3.connect(data / "tinymlaas.sqlite3")
        rows = db.execute("SELECT endpoint, reg_id FROM registrations").fetchall()
        db.close()
        alive = {f"crash-{i}" for i in range(N) if i % 10 != 0}
        assert sorted(ep for ep, _ in rows) == sorted(alive)  # no duplicates, expired ones deleted
        assert {ep: rid.encode() for ep, rid in rows} == {ep: locations[ep] for ep in alive}
        # the restarted server knows them: Update → 2.04 for a live one, 4.04 for an expired one
        peer.send(wire.build(wire.CON, wire.POST, 5000, b"u", [(wire.URI_PATH, b"rd"),
                                                                (wire.URI_PATH, locations["crash-7"])]))  # fmt: skip
        assert (await peer.recv(5)).code_str == "2.04"
        peer.send(wire.build(wire.CON, wire.POST, 5001, b"v", [(wire.URI_PATH, b"rd"),
                                                                (wire.URI_PATH, locations["crash-10"])]))  # fmt: skip
        assert (await peer.recv(5)).code_str == "4.04"
    finally:
        peer.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 15)
