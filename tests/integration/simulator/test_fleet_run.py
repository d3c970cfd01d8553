"""A fleet in one process, and the ``tinymlaas sim`` command, against a minimal RD over loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from simulator.fleet import Fleet
from tests.integration.simulator.conftest import RDServer

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.timeout(60)


async def test_demo_fleet_registers_and_deregisters(rd_server: RDServer) -> None:
    fleet = Fleet.from_toml(REPO / "config" / "fleet-demo.toml", rd_server.uri)
    await fleet.start(wait_registered=20)
    try:
        assert fleet.registered == len(fleet.devices) == 14
        registers = rd_server.rd.of("0.02", path_len=1)
        endpoints = {q[3:] for r in registers for q in r.query if q.startswith("ep=")}
        assert endpoints == {d.endpoint for d in fleet.devices}
        versions = {q for r in registers for q in r.query if q.startswith("lwm2m=")}
        assert versions == {"lwm2m=1.0", "lwm2m=1.1"}
        assert any("Q" in r.query for r in registers)  # the NB-IoT queue-mode profile
        assert len({r.port for r in registers}) == 14  # one socket per device
    finally:
        await fleet.stop()
    assert rd_server.rd.live == {}
    assert len(rd_server.rd.of("0.04")) >= 14


async def test_sim_command_runs_until_sigint_and_deregisters(rd_server: RDServer) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from lwm2m_server.cli import main; main()",
        "sim",
        "--server",
        rd_server.uri,
        "--fleet",
        str(REPO / "config" / "fleet-small.toml"),
        "--devices",
        "5",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        head = b""
        while b"registered in" not in head:  # the summary line: every device answered its Register
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, head
            head += line
        assert len(rd_server.rd.live) == 5
        proc.send_signal(signal.SIGINT)
        _, rest = await asyncio.wait_for(proc.communicate(), 30)
        err = head + rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert rd_server.rd.live == {}, "every device de-registered on Ctrl-C"
    assert b"5/5 registered" in err


async def test_sim_command_rejects_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[fleet]\n")
    for args, needle in (
        (["--server", "http://x", "--fleet", str(bad)], b"coap://"),
        (["--fleet", str(tmp_path / "missing.toml")], b"not found"),
        (["--fleet", str(bad)], b"at least one"),
    ):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from lwm2m_server.cli import main; main()",
            "sim",
            *args,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2
        assert err.startswith(b"error: ") and needle in err
        assert b"Traceback" not in err
