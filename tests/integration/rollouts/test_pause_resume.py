"""Pause then resume while a device is still in flight: the runner that waits for it must carry on (it used to
exit, leaving the rollout RUNNING with no runner, stuck for ever)."""

from __future__ import annotations

from tests.integration.rollouts.conftest import M4F, Stack


async def test_resume_while_the_paused_runner_waits_for_in_flight_devices(stack: Stack) -> None:
    for endpoint in ("pr-0", "pr-1"):
        await stack.add_device(endpoint, M4F)
    await stack.upload_kws("kws")
    plan = await stack.http.post("/api/models/kws/plan", params={"filter": "True"})  # compile once, up front
    assert plan.status_code == 200, plan.text
    created = await stack.http.post("/api/rollouts", json={"model": "kws", "waves": "50%,100%", "max_concurrency": 1})
    rollout_id = created.json()["id"]
    assert (await stack.http.post(f"/api/rollouts/{rollout_id}/start")).json()["state"] == "running"
    assert (await stack.http.post(f"/api/rollouts/{rollout_id}/pause")).json()["state"] == "paused"
    assert (await stack.http.post(f"/api/rollouts/{rollout_id}/resume")).json()["state"] == "running"
    done = await stack.wait_state(rollout_id, {"completed", "paused", "failed"}, timeout=60)
    assert done["state"] == "completed" and done["counts"] == {"confirmed": 2}, done
