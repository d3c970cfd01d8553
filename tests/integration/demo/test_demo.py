"""`tinymlaas demo --devices 20 --json`: the README's main job, end to end in a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_json_summary(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lwm2m_server.cli", "demo", "--devices", "20", "--json", "--epochs", "4",
         "--cache-dir", str(tmp_path / "cache"), "--timeout", "240"],
        capture_output=True, text=True, timeout=420,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary) == {"devices", "wall_s", "totals", "classes"}
    assert summary["devices"] == 20
    totals = summary["totals"]
    assert totals["failed"] == 0
    assert totals["confirmed"] + totals["incompatible"] == 20
    assert totals["incompatible"] >= 1  # the profile that cannot fit the model
    classes = {c["target"]: c for c in summary["classes"]}
    assert len(classes) >= 5
    tiny = classes["tiny-m0-16k"]
    assert tiny["variant"] is None and tiny["incompatible"] >= 1 and tiny["confirmed"] == 0
    no_fpu = classes["cortex-m0plus-64k"]
    assert no_fpu["variant"].startswith("int8")  # no FPU: never float32
    m4f = classes["cortex-m4f-256k"]  # FPU: float32 fits, but within the margin the smaller int8 package ships
    assert m4f["variant"] is not None and m4f["variant"] != "float32"
    for c in summary["classes"]:
        keys = {"target", "variant", "size", "arena_bytes", "accuracy", "confirmed", "incompatible", "failed"}
        assert set(c) == keys
        if c["variant"] is not None:
            assert c["confirmed"] >= 1 and c["size"] > 0 and c["arena_bytes"] > 0 and 0.5 < c["accuracy"] <= 1.0
    assert sum(c["confirmed"] for c in summary["classes"]) == totals["confirmed"]


def test_demo_rejects_bad_options() -> None:
    proc = subprocess.run([sys.executable, "-m", "lwm2m_server.cli", "demo", "--waves", "50%,10%"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "error: --waves" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_keep_running_prints_a_usable_token(tmp_path: Path) -> None:
    """``demo --keep-running`` keeps the server up and prints an admin token that the REST API accepts."""
    import os
    import re
    import signal
    import time

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "lwm2m_server.cli", "demo", "--devices", "6", "--epochs", "1", "--keep-running",
         "--cache-dir", str(tmp_path / "cache"), "--timeout", "240"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        url = token = None
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and token is None:
            line = proc.stdout.readline()
            assert line, "".join(seen[-40:])
            seen.append(line)
            if m := re.search(r"keeping the server running: (http://127\.0\.0\.1:\d+)", line):
                url = m.group(1)
            if m := re.search(r"export TINYMLAAS_TOKEN=(tmla_\S+)", line):
                token = m.group(1)
        assert url is not None and token is not None, "".join(seen[-40:])
        assert httpx.get(f"{url}/api/devices", timeout=10).status_code == 401
        devices = httpx.get(f"{url}/api/devices", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert devices.status_code == 200 and devices.json()["total"] == 6
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
