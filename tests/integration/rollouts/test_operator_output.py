"""Readable output: compile classes by name (plan, status, events), untruncated tables at 80 columns, --json."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from tests.integration.api.sse import sse
from tests.integration.rollouts.conftest import M4F, M7, TINY, Stack
from tests.integration.rollouts.test_rollout_cli import TINYMLAAS

LONG = ["operator-cortex-m4f-256k-device-0001", "operator-cortex-m4f-256k-device-0002", "operator-m7-device-0003",
        "operator-tiny-device-0004"]  # fmt: skip
M4F_CLASS = "cortex-m4f-160k-512k-fpu"


async def cli80(stack: Stack, *args: str) -> tuple[int, str, str]:
    """The CLI on an 80-column terminal width (rich reads COLUMNS)."""
    proc = await asyncio.create_subprocess_exec(
        TINYMLAAS, *args, "--server", stack.url, env={**os.environ, "COLUMNS": "80"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_class_names_and_untruncated_tables(stack: Stack) -> None:
    assert sys.executable
    await stack.upload_kws("kws")
    for ep, profile in zip(LONG, (M4F, M4F, M7, TINY), strict=True):
        await stack.add_device(ep, profile)

    rc, out, err = await cli80(stack, "devices")
    assert rc == 0, err
    assert all(ep in out for ep in LONG), out  # whole names, never "operator-c…"
    assert max(len(line) for line in out.splitlines()) <= 80
    rc, out, _ = await cli80(stack, "devices", "--json")
    assert rc == 0 and sorted(d["endpoint"] for d in json.loads(out)["items"]) == LONG

    rc, out, err = await cli80(stack, "models", "plan", "kws", "--filter", "ram_total > 0", "--json")
    assert rc == 0, err
    plan = json.loads(out)
    names = {c["class_name"]: c for c in plan["classes"]}
    assert M4F_CLASS in names and len(names[M4F_CLASS]["class_key"]) == 16  # the hash stays the id
    assert names[M4F_CLASS]["endpoints"] == LONG[:2]
    assert {"cortex-m7-320k-1m-fpu", "cortex-m0plus-2k-8k-nofpu"} <= set(names)
    rc, out, _ = await cli80(stack, "models", "plan", "kws", "--filter", "ram_total > 0")
    assert rc == 0 and f"class {M4F_CLASS}" in out

    async with sse(stack.http, type="rollout.class") as events:
        created = (await stack.http.post("/api/rollouts", json={"model": "kws", "start": True})).json()
        rid = created["id"]
        built = {(await events.next(timeout=30, rollout_id=rid)).data["data"]["class_name"] for _ in range(3)}
    assert M4F_CLASS in built and "cortex-m0plus-2k-8k-nofpu" in built
    await stack.wait_state(rid, {"completed", "paused", "failed"}, timeout=60)

    rc, out, err = await cli80(stack, "rollout", "status", rid, "--devices", "10")
    assert rc == 0, err
    assert M4F_CLASS in out and all(ep in out for ep in LONG), out
    rc, out, _ = await cli80(stack, "rollout", "status", rid, "--devices", "10", "--json")
    status = json.loads(out)
    assert {c["class_name"] for c in status["classes"]} >= {M4F_CLASS}
    assert {d["class_name"] for d in status["devices"] if d["endpoint"] in LONG[:2]} == {M4F_CLASS}
    rc, out, _ = await cli80(stack, "rollout", "list")
    assert rc == 0 and rid in out
