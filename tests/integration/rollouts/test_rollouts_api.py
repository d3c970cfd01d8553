"""Rollouts over REST against a real fleet: lifecycle by compile class, operator controls, retry, audit, errors."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from simulator.profiles import FaultConfig
from tests.integration.api.sse import sse
from tests.integration.rollouts.conftest import M4F, M7, TINY, Stack, repair, wait_for


async def _create(stack: Stack, **body: Any) -> dict[str, Any]:
    response = await stack.http.post("/api/rollouts", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _action(stack: Stack, rollout_id: str, action: str, status: int = 200) -> dict[str, Any]:
    response = await stack.http.post(f"/api/rollouts/{rollout_id}/{action}")
    assert response.status_code == status, response.text
    return dict(response.json())


@pytest.mark.slow
async def test_lifecycle_by_compile_class(stack: Stack) -> None:
    """6 devices, 3 hardware classes (one too small): confirmed devices report the class's payload sha."""
    fleet = [("r-m4f-1", M4F), ("r-m4f-2", M4F), ("r-m4f-3", M4F), ("r-m7-1", M7), ("r-m7-2", M7), ("r-tiny", TINY)]
    for ep, profile in fleet:
        await stack.add_device(ep, profile)
    async with sse(stack.http, type="rollout.progress") as events:
        created = await _create(stack, model="digits-cnn", filter='accelerator == "none"', waves="1,3",
                                max_concurrency=3, start=True)  # fmt: skip
        rid = created["id"]
        assert created["total"] == 6 and created["wave_count"] == 3
        done = await stack.wait_state(rid, {"completed", "paused", "failed"}, timeout=60)
        frame = await events.next(timeout=5, rollout_id=rid, state="completed")
        assert frame.event == "rollout.progress" and frame.data["data"]["counts"]["confirmed"] == 5
    assert done["state"] == "completed", done
    assert done["counts"] == {"confirmed": 5, "incompatible": 1}
    classes = {c["class_key"]: c for c in done["classes"]}
    assert len(classes) == 3
    by_ep = {d["endpoint"]: d for d in done["devices"]}
    for ep, _ in fleet:
        device = by_ep[ep]
        cls = classes[device["class_key"]]
        counter = stack.fleet.counters[ep]
        if ep == "r-tiny":
            assert device["state"] == "incompatible" and "nothing fits" in (device["cause"] or "")
            assert cls["counts"] == {"incompatible": 1} and cls["package_sha"] is None
            assert counter.installs == 0 and counter.sha == ""
        else:
            assert device["state"] == "confirmed" and device["attempts"] == 1
            assert counter.sha == cls["payload_sha"] and counter.installs == 1
            read = await stack.http.get(f"/api/devices/{ep}/32002/0/2")
            assert read.status_code == 200 and cls["payload_sha"] in read.text
    m4f_class = classes[by_ep["r-m4f-1"]["class_key"]]
    assert m4f_class["counts"] == {"confirmed": 3} and m4f_class["variant"] and m4f_class["size"] > 0
    waves = [w["counts"] for w in done["waves"]]
    assert waves == [{"confirmed": 1}, {"confirmed": 2}, {"confirmed": 2, "incompatible": 1}]
    # paging of the per-device list
    page = await stack.rollout(rid, limit=2, offset=2)
    assert [d["endpoint"] for d in page["devices"]] == [d["endpoint"] for d in done["devices"][2:4]]
    # audit: by rollout and by device
    audit = (await stack.http.get("/api/audit", params={"rollout": rid})).json()
    actions = [a["action"] for a in audit]
    assert actions[:2] == ["rollout.created", "action.start"] and actions[-1] == "rollout.completed"
    assert audit[0]["actor"] == "token:initial-admin"  # who did it: the token's name
    assert actions.count("wave.advanced") == 2 and actions.count("device.confirmed") == 5
    mine = (await stack.http.get("/api/audit", params={"endpoint": "r-tiny"})).json()
    assert [(a["action"], a["rollout_id"]) for a in mine] == [("device.incompatible", rid)]
    # metrics
    text = (await stack.http.get("/metrics")).text
    assert f'tinymlaas_rollout_devices{{rollout="{rid}",state="confirmed"}} 5.0' in text
    assert 'tinymlaas_rollouts{state="completed"} 1.0' in text
    assert 'tinymlaas_ota_jobs{phase="succeeded"} 5.0' in text
    hits = float(re.search(r"^tinymlaas_compile_cache_hits_total (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    misses = float(re.search(r"^tinymlaas_compile_cache_misses_total (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert hits + misses >= 2  # two compile classes (the third fits nothing but is compiled too)


async def test_pause_resume_cancel(stack: Stack) -> None:
    await stack.upload_kws("kws")
    for i in range(4):
        await stack.add_device(f"c-{i}", M4F)
    created = await _create(stack, model="kws", waves="100%", max_concurrency=1, rate_per_minute=30, start=True)
    rid = created["id"]
    paused = await _action(stack, rid, "pause")
    assert paused["state"] == "paused"
    conflict = await stack.http.post(f"/api/rollouts/{rid}/pause")
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    await asyncio.sleep(2.5)  # paused: in-flight finishes, nothing new starts
    snapshot = await stack.rollout(rid)
    started = sum(n for s, n in snapshot["counts"].items() if s != "pending")
    assert started <= 1 and snapshot["counts"].get("pending", 0) >= 3
    assert (await _action(stack, rid, "resume"))["state"] == "running"

    async def one_more() -> bool:
        return (await stack.rollout(rid))["counts"].get("confirmed", 0) >= 2

    await wait_for(one_more, 20, "a second confirmed device after resume")
    cancelled = await _action(stack, rid, "cancel")
    assert cancelled["state"] == "cancelled"
    final = await stack.rollout(rid)
    assert final["counts"].get("pending", 0) == 0 and final["counts"].get("cancelled", 0) >= 1
    assert final["counts"].get("confirmed", 0) + final["counts"].get("cancelled", 0) == 4
    for action in ("resume", "start", "pause", "cancel", "retry"):
        response = await stack.http.post(f"/api/rollouts/{rid}/{action}")
        assert response.status_code == 409, (action, response.text)
    await asyncio.sleep(1.0)
    never_started = [d["endpoint"] for d in final["devices"] if d["state"] == "cancelled" and d["attempts"] == 0]
    assert never_started and all(stack.fleet.counters[ep].installs == 0 for ep in never_started)
    actions = [a["action"] for a in (await stack.http.get("/api/audit", params={"rollout": rid})).json()]
    for expected in ("action.pause", "action.resume", "action.cancel"):
        assert expected in actions


async def test_retry_after_failure(stack: Stack) -> None:
    """A device whose download is corrupted fails (no OTA retries); once repaired, ``retry`` confirms it."""
    await stack.upload_kws("kws")
    await stack.add_device("f-ok-1", M4F)
    await stack.add_device("f-ok-2", M4F)
    bad = await stack.add_device("f-bad", M4F, faults=FaultConfig(corrupt_payload=True))
    created = await _create(stack, model="kws", max_retries=0, start=True)
    rid = created["id"]
    stalled = await stack.wait_state(rid, {"paused", "completed"}, timeout=40)
    assert stalled["state"] == "paused" and "below the success threshold" in stalled["reason"]
    failed = {d["endpoint"]: d for d in stalled["devices"]}["f-bad"]
    assert failed["state"] == "failed" and failed["cause"]
    assert stalled["counts"] == {"confirmed": 2, "failed": 1}
    repair(bad)
    assert (await _action(stack, rid, "retry"))["state"] == "running"
    done = await stack.wait_state(rid, {"completed", "paused"}, timeout=40)
    assert done["state"] == "completed" and done["counts"] == {"confirmed": 3}
    device = {d["endpoint"]: d for d in done["devices"]}["f-bad"]
    assert device["attempts"] == 2
    assert stack.fleet.counters["f-bad"].sha == done["classes"][0]["payload_sha"]
    assert all(stack.fleet.counters[ep].installs == 1 for ep in ("f-ok-1", "f-ok-2"))
    history = [a["action"] for a in (await stack.http.get("/api/audit", params={"endpoint": "f-bad"})).json()]
    assert history == ["device.failed", "device.retry", "device.confirmed"]


async def test_error_shapes(stack: Stack) -> None:
    await stack.upload_kws("kws")
    bad_bodies: list[Any] = [
        {"model": "kws", "waves": "0%"},
        {"model": "kws", "filter": "open('x')"},
        {"model": "kws", "surprise": 1},
        {"model": "", "waves": "100%"},
        {"model": "no-such-model"},
        {"model": "kws", "start": "yes"},
        {"model": "kws", "max_concurrency": 0},
        [1, 2],
    ]
    for body in bad_bodies:
        response = await stack.http.post("/api/rollouts", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"] == "bad_request" and response.json()["message"]
    raw = await stack.http.post("/api/rollouts", content=b"{not json", headers={"content-type": "application/json"})
    assert raw.status_code == 400
    for method, url in (("GET", "/api/rollouts/nope"), ("POST", "/api/rollouts/nope/pause")):
        response = await stack.http.request(method, url)
        assert response.status_code == 404 and response.json() == {"error": "not_found", "message": "no rollout 'nope'"}
    created = await _create(stack, model="kws", allow_empty=True)  # no device yet: refused unless asked for
    assert created["state"] == "created"
    for action, status in (("pause", 409), ("resume", 409), ("retry", 409), ("explode", 400), ("start", 200)):
        response = await stack.http.post(f"/api/rollouts/{created['id']}/{action}")
        assert response.status_code == status, (action, response.text)
        assert status == 200 or set(response.json()) == {"error", "message"}
    listed = (await stack.http.get("/api/rollouts")).json()
    assert [r["id"] for r in listed] == [created["id"]]
