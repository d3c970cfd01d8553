"""``tinymlaas sim --bootstrap coaps://... --psk-csv factory.csv`` as a real process: every device bootstraps over
DTLS with its factory bootstrap key, then registers over DTLS with the fresh credential the server wrote."""

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


async def test_sim_fleet_bootstraps_over_dtls(server: LwM2MServer, tmp_path: Path) -> None:
    endpoints = [d.endpoint for d in Fleet.from_toml(FLEET, coaps_uri(server)).devices]
    csv = tmp_path / "factory-bootstrap.csv"
    csv.write_text("".join(f"{ep},fb-{i},{i:032x}\n" for i, ep in enumerate(endpoints, 1)))
    assert await server.credentials.import_csv(csv.read_text(), bootstrap=True) == len(endpoints)
    for ep in endpoints:
        await server.bootstrap_configs.put({"endpoint": ep, "server_uri": coaps_uri(server)})
    task = asyncio.create_task(run("sim", "--bootstrap", coaps_uri(server), "--fleet", str(FLEET),
                                   "--psk-csv", str(csv), "--duration", "2"))  # fmt: skip
    await until(lambda: all(server.registry.get(ep) is not None for ep in endpoints), timeout=30)
    assert {server.registry.get(ep).security for ep in endpoints} == {"psk"}  # type: ignore[union-attr]
    assert all(server.credentials.is_secured(ep) for ep in endpoints)  # fresh credentials, stored by bootstrap
    code, out = await task
    assert code == 0, out
    assert f"{len(endpoints)}/{len(endpoints)} registered" in out


async def test_sim_cli_bootstrap_needs_factory_keys() -> None:
    code, out = await run("sim", "--bootstrap", "coaps://127.0.0.1:5684", "--fleet", str(FLEET))
    assert code != 0 and "factory bootstrap" in out
    code, out = await run("sim", "--bootstrap", "http://x", "--fleet", str(FLEET))
    assert code != 0 and "--bootstrap must be" in out
