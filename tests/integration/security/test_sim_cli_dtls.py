"""``tinymlaas sim --server coaps://... --psk-csv`` as a real process: every device registers over DTLS with the
identity and key of its CSV line (the file ``credentials import`` takes); bad use is a clear CLI error."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lwm2m_server.resources import CONFIG_DIR
from lwm2m_server.server import LwM2MServer
from simulator.fleet import Fleet
from tests.integration.security.conftest import coaps_uri
from tests.integration.server.conftest import until

CLI = [sys.executable, "-c", "from lwm2m_server.cli import main; main()"]
FLEET = CONFIG_DIR / "fleet-small.toml"


async def run(*args: str, timeout: float = 60.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_sim_fleet_over_dtls_from_the_factory_csv(server: LwM2MServer, tmp_path: Path) -> None:
    endpoints = [d.endpoint for d in Fleet.from_toml(FLEET, coaps_uri(server)).devices]
    csv = tmp_path / "factory.csv"
    csv.write_text("endpoint,identity,key_hex\n" + "".join(f"{ep},id-{ep},{i:032x}\n"
                                                          for i, ep in enumerate(endpoints, 1)))  # fmt: skip
    assert await server.credentials.import_csv(csv.read_text()) == len(endpoints)
    task = asyncio.create_task(run("sim", "--server", coaps_uri(server), "--fleet", str(FLEET),
                                   "--psk-csv", str(csv), "--duration", "2"))  # fmt: skip
    await until(lambda: all(server.registry.get(ep) is not None for ep in endpoints), timeout=30)
    assert {server.registry.get(ep).security for ep in endpoints} == {"psk"}  # type: ignore[union-attr]
    code, out = await task
    assert code == 0, out
    assert f"{len(endpoints)}/{len(endpoints)} registered" in out
    await until(lambda: all(server.registry.get(ep) is None for ep in endpoints), timeout=10)  # de-registered


async def test_sim_cli_refuses_coaps_without_keys(tmp_path: Path) -> None:
    code, out = await run("sim", "--server", "coaps://127.0.0.1:5684", "--fleet", str(FLEET))
    assert code != 0 and "--psk-csv" in out
    partial = tmp_path / "partial.csv"
    partial.write_text(f"small-nobody-0000,id-x,{'00' * 16}\n")
    code, out = await run("sim", "--server", "coaps://127.0.0.1:5684", "--fleet", str(FLEET),
                          "--psk-csv", str(partial))  # fmt: skip
    assert code != 0 and "no line for 3 devices" in out
