"""Restart safety: SIGKILL ``tinymlaas serve`` mid-rollout, start it again on the same data dir and CoAP port,
and the rollout completes with every device updated exactly once (none twice, none forgotten)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lwm2m_server.ota import builds
from tests.integration.rollouts.conftest import KWS, M4F, M7, Fleet, wait_for
from tests.support.auth import bearer

TINYMLAAS = str(Path(sys.executable).parent / "tinymlaas")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """``tinymlaas serve`` in its own process group (so its compile workers die with it)."""

    def __init__(self, data_dir: Path, coap_port: int, cache: Path, log: Path) -> None:
        self.args = [TINYMLAAS, "serve", "--coap-host", "127.0.0.1", "--coap-port", str(coap_port),
                     "--http-port", "0", "--data-dir", str(data_dir)]  # fmt: skip
        self.env = {
            **os.environ, "TINYMLAAS_COMPILE__CACHE_DIR": str(cache), "TINYMLAAS_COMPILE__WORKERS": "1",
            "TINYMLAAS_OTA__POLL_INTERVAL_S": "0.5", "TINYMLAAS_OTA__TIMEOUT_S": "20",
            "TINYMLAAS_OTA__RETRY_BACKOFF_S": "0.2",
            "TINYMLAAS_SERVER__REQUEST_TIMEOUT_S": "5", "TINYMLAAS_STORE__BATCH_WINDOW_MS": "2",
            "TINYMLAAS_LOGGING__LEVEL": "info", "TINYMLAAS_LOGGING__FORMAT": "json",
        }  # fmt: skip
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""  # printed once, by the first start (ADMIN_TOKEN line)

    async def start(self) -> str:
        out = self.log.open("ab")
        start = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in self.log.read_bytes()[start:].decode(errors="replace").splitlines():
                if line.startswith("ADMIN_TOKEN "):
                    self.token = line.split()[1]
                if line.startswith("READY "):
                    http = dict(kv.split("=") for kv in line.split()[1:])["http"]
                    return f"http://127.0.0.1:{http}"
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            await asyncio.sleep(0.1)
        raise AssertionError("tinymlaas serve did not print READY")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def serve(tmp_path: Path, compile_cache: Path) -> Iterator[Serve]:
    s = Serve(tmp_path / "data", free_udp_port(), compile_cache, tmp_path / "serve.log")
    yield s
    s.kill()


async def _get(url: str, path: str, token: str) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=10.0, headers=bearer(token)) as http:
        response = await http.get(path)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.mark.slow
async def test_sigkill_mid_rollout_then_restart(serve: Serve, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = await serve.start()
    coap_uri = f"coap://127.0.0.1:{serve.args[5]}"
    fleet = Fleet(builds.server_public_key(data_dir))
    endpoints = [f"k-{i}" for i in range(6)]
    try:
        for i, ep in enumerate(endpoints):
            await fleet.add(coap_uri, ep, M4F if i % 2 else M7)

        async def profiled() -> bool:
            return all([(await _get(url, f"/api/devices/{ep}", serve.token))["profile"] for ep in endpoints])

        await wait_for(profiled, 15, "every device's profile")
        async with httpx.AsyncClient(base_url=url, timeout=30.0, headers=bearer(serve.token)) as http:
            upload = await http.post("/api/models", files={"file": ("kws.tflite", KWS.read_bytes())},
                                     data={"name": "kws"})  # fmt: skip
            assert upload.status_code == 201, upload.text
            response = await http.post(
                "/api/rollouts", json={"model": "kws", "max_concurrency": 2, "rate_per_minute": 60, "start": True}
            )
            assert response.status_code == 201, response.text
            rid = response.json()["id"]

        before: dict[str, Any] = {}

        async def mid_rollout() -> bool:
            nonlocal before
            before = await _get(url, f"/api/rollouts/{rid}?limit=0", serve.token)
            return before["counts"].get("confirmed", 0) >= 2

        await wait_for(mid_rollout, 40, "two confirmed devices")
        serve.kill()  # SIGKILL: no shutdown, no flush
        assert before["state"] == "running" and before["counts"].get("pending", 0) >= 1, before
        installed_before = {ep: c.installs for ep, c in fleet.counters.items()}
        await asyncio.sleep(0.5)

        url = await serve.start()  # same data dir and CoAP port; the devices never noticed more than a pause
        final: dict[str, Any] = {}

        async def completed() -> bool:
            nonlocal final
            final = await _get(url, f"/api/rollouts/{rid}?limit=100", serve.token)
            return final["state"] in ("completed", "paused", "failed")

        await wait_for(completed, 60, "the rollout to finish after the restart")
        assert final["state"] == "completed", final
        assert final["counts"] == {"confirmed": 6}, final["devices"]
        payload_sha = {c["class_key"]: c["payload_sha"] for c in final["classes"]}
        for device in final["devices"]:
            counter = fleet.counters[device["endpoint"]]
            assert counter.installs == 1, (device, installed_before)  # none twice, none forgotten
            assert counter.sha == payload_sha[device["class_key"]]
        audit = await _get(url, f"/api/audit?rollout={rid}", serve.token)
        assert "rollout.resumed_after_restart" in [a["action"] for a in audit]
        assert sum(1 for a in audit if a["action"] == "device.confirmed") == 6
    finally:
        with contextlib.suppress(Exception):
            await fleet.stop()
        serve.terminate()
