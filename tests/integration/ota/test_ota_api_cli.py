"""REST (upload, start, status, cancel) and the ``tinymlaas update`` CLI against a live server + simulator."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
from typer.testing import CliRunner

from lwm2m_server.cli import app
from lwm2m_server.cli.app import CliError
from simulator.profiles import HardwareProfile
from tests.integration.ota.conftest import Harness
from tests.integration.ota.models import KWS, signed_kws_package
from tests.support.auth import authorized_api


async def test_rest_upload_start_and_status(harness: Harness) -> None:
    dev = await harness.device("rest-dev", accept_raw_firmware=True)
    image = b"FWIMG\x00" + os.urandom(3000)
    async with authorized_api(harness.server, ota=harness.ota) as runner:  # noqa: SIM117 - url known only inside
        async with httpx.AsyncClient(base_url=runner.url, timeout=10, headers=runner.auth.headers) as http:
            up = await http.post("/api/packages", params={"kind": "firmware", "version": "2"}, content=image)
            assert up.status_code == 201, up.text
            sha = up.json()["sha256"]
            assert (await http.get("/api/packages")).json()[0]["sha256"] == sha
            bad = await http.post("/api/devices/rest-dev/update", json={"package": sha, "firmware": sha})
            assert bad.status_code == 400
            wrong_kind = await http.post("/api/devices/rest-dev/update", json={"package": sha})
            assert wrong_kind.status_code == 400
            unknown = await http.post("/api/devices/nobody/update", json={"firmware": sha})
            assert unknown.status_code == 404
            started = await http.post("/api/devices/rest-dev/update", json={"firmware": sha, "method": "push"})
            assert started.status_code == 202, started.text
            job_id = started.json()["job"]
            record = await asyncio.wait_for(harness.ota.wait(job_id), 15)
            assert record.phase == "succeeded"
            status = (await http.get("/api/devices/rest-dev/update")).json()
            assert status["job"]["id"] == job_id and status["job"]["phase"] == "succeeded"
            assert [h["to_phase"] for h in status["history"]][-1] == "succeeded"
            assert status["job"]["progress"]["bytes"] == len(image)
            bad_model = await http.post("/api/packages", params={"kind": "model"}, content=b"garbage")
            assert bad_model.status_code == 400
    assert dev.registrations >= 2


def _cli(args: list[str]) -> tuple[int, str]:
    """Like ``main()``: a CliError becomes ``error: ...`` and its exit code."""
    result = CliRunner().invoke(app, args)
    if isinstance(result.exception, CliError):
        return result.exception.code, result.output + f"error: {result.exception}"
    return result.exit_code, result.output


async def test_cli_update_exit_codes(harness: Harness, tmp_path: Path) -> None:
    blob, public_key = signed_kws_package(harness.server.settings.server.data_dir)
    pkg_file = tmp_path / "kws.pkg"
    pkg_file.write_bytes(blob)
    await harness.device("cli-ok", server_public_key=public_key)
    tiny = await harness.device("cli-tiny", server_public_key=public_key, profile=HardwareProfile(flash_free=8192))
    async with authorized_api(harness.server, ota=harness.ota) as runner:
        code, out = await asyncio.to_thread(
            _cli, ["update", "cli-ok", "--package", str(pkg_file), "--method", "pull", "--json", "--server", runner.url]
        )
        assert code == 0, out
        job = json.loads(out[out.index("{") :])
        assert job["phase"] == "succeeded" and job["progress"]["health"] == "ok"
        code, out = await asyncio.to_thread(
            _cli, ["update", tiny.endpoint, "--package", str(pkg_file), "--server", runner.url]
        )
        assert code == 1
        assert "error: update failed: not fitting (not enough flash)" in out
        code, out = await asyncio.to_thread(_cli, ["update", "cli-ok", "--server", runner.url])
        assert code == 2 and "exactly one" in out
    assert KWS.exists()
