"""``tinymlaas rollout ...`` and ``tinymlaas models ...`` as subprocesses against a running server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.integration.rollouts.conftest import KWS, M4F, TINY, Stack

TINYMLAAS = str(Path(sys.executable).parent / "tinymlaas")


async def cli(stack: Stack | None, *args: str, timeout: float = 60.0) -> tuple[int, str, str]:
    server = ["--server", stack.url] if stack is not None else []
    proc = await asyncio.create_subprocess_exec(
        TINYMLAAS, *args, *server,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli_json(stack: Stack, *args: str) -> Any:
    rc, out, err = await cli(stack, *args, "--json")
    assert rc == 0, err
    return json.loads(out)


async def test_models_and_rollout_commands(stack: Stack) -> None:
    await stack.add_device("cli-1", M4F)
    await stack.add_device("cli-2", M4F)
    await stack.add_device("cli-tiny", TINY)

    entry = await cli_json(stack, "models", "upload", str(KWS), "--name", "kws")
    assert entry["name"] == "kws" and entry["kind"] == "tflite"
    names = {m["name"] for m in await cli_json(stack, "models", "list")}
    assert names >= {"digits-cnn", "vibration-anomaly", "kws"}
    plan = await cli_json(stack, "models", "plan", "kws", "--filter", "ram_total > 0")
    assert sorted(len(c["endpoints"]) for c in plan["classes"]) == [1, 2]
    assert {c["fits"] for c in plan["classes"]} == {True, False}
    rc, out, _ = await cli(stack, "models", "plan", "kws", "--ep", "cli-1")
    assert rc == 0 and "int8" in out and "1 device(s) in 1 compile class" in out

    created = await cli_json(stack, "rollout", "create", "--model", "kws", "--filter", "ram_total > 0",
                             "--waves", "50%,100%", "--max-concurrency", "2", "--canary", "cli-2")  # fmt: skip
    rid = created["id"]
    assert created["state"] == "created" and created["total"] == 3 and created["wave_count"] == 3
    rc, out, _ = await cli(stack, "rollout", "start", rid)
    assert rc == 0 and f"rollout {rid}: running" in out
    rc, out, err = await cli(stack, "rollout", "status", rid, "--watch", "--interval", "0.2", "--wait", "45")
    assert rc == 0, err
    assert f"rollout {rid} completed" in out and "confirmed=2" in out and "incompatible=1" in out
    status = await cli_json(stack, "rollout", "status", rid, "--devices", "10")
    assert status["counts"] == {"confirmed": 2, "incompatible": 1}
    assert status["devices"][0]["endpoint"] == "cli-2" and status["devices"][0]["wave"] == 0  # the canary
    listed = await cli_json(stack, "rollout", "list")
    assert [(r["id"], r["state"]) for r in listed] == [(rid, "completed")]
    rc, out, _ = await cli(stack, "rollout", "list")
    assert rc == 0 and rid in out

    # remote refusals exit 1, usage errors exit 2: one line, no traceback
    cases: list[tuple[Stack | None, tuple[str, ...], int, str]] = [
        (stack, ("rollout", "pause", rid), 1, "error: HTTP 409 conflict: cannot pause"),
        (stack, ("rollout", "status", "nope"), 1, "error: HTTP 404 not_found: no rollout 'nope'"),
        (None, ("rollout", "list", "--server", "http://127.0.0.1:9"), 1, "error: cannot reach"),
        (stack, ("rollout", "create", "--model", "kws", "--waves", "10%,5"), 2, "error: HTTP 400 bad_request: waves"),
        (stack, ("models", "plan", "kws"), 2, "error: give --ep"),
        (stack, ("models", "upload", "/nonexistent.tflite"), 2, "error: cannot read"),
    ]
    for target, args, code, message in cases:
        rc, _, err = await cli(target, *args)
        assert rc == code and err.startswith(message) and len(err.strip().splitlines()) == 1, (args, rc, err)
    rc, _, err = await cli(stack, "rollout", "create")
    assert rc == 2 and "--model" in err  # typer's own usage error


async def test_watch_of_a_paused_rollout_exits_1(stack: Stack) -> None:
    await stack.upload_kws("kws")
    await stack.add_device("w-1", M4F)
    created = (await stack.http.post("/api/rollouts", json={"model": "kws", "start": True})).json()
    await stack.wait_state(created["id"], {"completed"})
    await stack.add_device("w-2", M4F)
    second = (await stack.http.post("/api/rollouts", json={"model": "kws", "rate_per_minute": 1})).json()
    rc, out, _ = await cli(stack, "rollout", "resume", second["id"])
    assert rc == 1
    rc, out, _ = await cli(stack, "rollout", "start", second["id"])
    assert rc == 0
    rc, out, _ = await cli(stack, "rollout", "pause", second["id"])
    assert rc == 0 and "paused" in out
    rc, out, err = await cli(stack, "rollout", "status", second["id"], "--watch")
    assert rc == 1 and f"rollout {second['id']} paused: paused by operator" in err
    rc, out, _ = await cli(stack, "rollout", "cancel", second["id"])
    assert rc == 0 and "cancelled" in out
