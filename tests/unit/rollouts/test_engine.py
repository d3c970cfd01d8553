"""Rollout engine logic over a real SQLite store, with a scripted deployer standing in for compile + OTA.

These pin the wave/threshold/pause/cancel/retry/restart rules deterministically and fast; the same
engine runs over real loopback fleets in tests/integration/rollouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.rollouts.model import Build, Incompatible, Outcome, PhaseCallback, RolloutSpec
from lwm2m_server.rollouts.repository import RolloutRepository
from lwm2m_server.rollouts.service import RolloutService
from lwm2m_server.rollouts.states import InvalidAction, RolloutState
from lwm2m_server.store.sqlite import SqliteStore


class ScriptedDeployer:
    """Devices named ``big-*`` / ``small-*``; ``fail`` holds endpoints whose first attempts fail."""

    def __init__(self, endpoints: list[str], fail: dict[str, int] | None = None, delay: float = 0.01) -> None:
        self.endpoints = endpoints
        self.fail = dict(fail or {})
        self.delay = delay
        self.builds: list[str] = []
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.installed: dict[str, str] = {}
        self.gate: asyncio.Event | None = None
        self.max_parallel = 0
        self._parallel = 0

    async def device_attributes(self, endpoint: str) -> dict[str, Any] | None:
        if endpoint not in self.endpoints:
            return None
        return {"endpoint": endpoint, "ram_total": 262144 if endpoint.startswith("big") else 16384}

    async def registered_endpoints(self) -> list[str]:
        return list(self.endpoints)

    def class_of(self, attributes: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        return ("big" if attributes["ram_total"] > 100000 else "small"), {"ram": attributes["ram_total"]}

    async def build(self, model: str, class_key: str, target: dict[str, Any] | None) -> Build | Incompatible:
        self.builds.append(class_key)
        await asyncio.sleep(0.05)  # a compile takes time: every device of the class waits for this one
        if class_key == "small":
            return Incompatible("small", "needs 61,440 B RAM, device has 16,384 B")
        return Build("big", "int8", "ab" * 32, 50_000, 30_000, 0.97)

    async def installed_sha(self, endpoint: str) -> str | None:
        return self.installed.get(endpoint)

    async def start(
        self, endpoint: str, build: Build, *, method: str | None, timeout_s: float | None, max_retries: int | None
    ) -> str:
        self.started.append(endpoint)
        return f"job-{endpoint}-{len(self.started)}"

    async def wait(self, job_id: str, on_phase: PhaseCallback) -> Outcome:
        endpoint = job_id.split("-", 1)[1].rsplit("-", 1)[0]
        self._parallel += 1
        self.max_parallel = max(self.max_parallel, self._parallel)
        try:
            await on_phase("delivering")
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.delay)
            await on_phase("installing")
            if self.fail.get(endpoint, 0) > 0:
                self.fail[endpoint] -= 1
                return Outcome("failed", "integrity failure")
            self.installed[endpoint] = "ab" * 32
            return Outcome("confirmed")
        finally:
            self._parallel -= 1

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "t.sqlite3")
    await s.open()
    yield s
    await s.close()


async def _service(store: SqliteStore, deployer: ScriptedDeployer) -> RolloutService:
    svc = RolloutService(RolloutRepository(store.rollouts, store.audit, store.flush), deployer)
    await svc.start()
    return svc


async def _until_started(dep: ScriptedDeployer, n: int, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(dep.started) < n:
        assert loop.time() < deadline, f"only {len(dep.started)} of {n} devices started"
        await asyncio.sleep(0.01)


async def _run_to_rest(svc: RolloutService, rid: str) -> dict[str, Any]:
    await asyncio.wait_for(svc.wait_idle(rid), 10)
    return await svc.get(rid)


async def test_waves_classes_and_incompatible(store: SqliteStore) -> None:
    eps = [f"big-{i}" for i in range(8)] + ["small-0", "small-1"]
    dep = ScriptedDeployer(eps)
    svc = await _service(store, dep)
    r = await svc.create(RolloutSpec(model="digits-cnn", waves="10%,50%,100%", max_concurrency=3), start=True)
    got = await _run_to_rest(svc, r.id)
    assert got["state"] == "completed"
    assert got["counts"] == {"confirmed": 8, "incompatible": 2}
    assert sorted(dep.builds) == ["big", "small"]  # one compile per class, not per device
    assert dep.max_parallel <= 3
    assert [w["wave"] for w in got["waves"]] == [0, 1, 2]
    classes = {c["class_key"]: c for c in got["classes"]}
    assert classes["small"]["reason"].startswith("needs 61,440 B RAM")
    assert classes["big"]["variant"] == "int8" and classes["big"]["counts"] == {"confirmed": 8}
    log = await svc.repo.audit_log(rollout_id=r.id)
    actions = [a["action"] for a in log]
    assert actions[0] == "rollout.created" and "action.start" in actions and actions[-1] == "rollout.completed"
    assert actions.count("wave.advanced") == 2
    await svc.stop()


async def test_filter_endpoints_and_skip_already_installed(store: SqliteStore) -> None:
    dep = ScriptedDeployer([f"big-{i}" for i in range(4)] + ["small-0"])
    dep.installed["big-1"] = "ab" * 32
    svc = await _service(store, dep)
    r = await svc.create(
        RolloutSpec(model="m", filter="ram_total >= 131072", endpoints=["big-0", "big-1", "small-0"]), start=True
    )
    got = await _run_to_rest(svc, r.id)
    assert got["total"] == 2 and got["counts"] == {"confirmed": 1, "skipped": 1}
    assert dep.started == ["big-0"]
    await svc.stop()


async def test_error_threshold_pauses_then_retry_completes(store: SqliteStore) -> None:
    eps = [f"big-{i}" for i in range(10)]
    dep = ScriptedDeployer(eps, fail={"big-0": 1, "big-1": 1, "big-2": 1})
    svc = await _service(store, dep)
    spec = RolloutSpec(model="m", waves="equal:2", error_threshold_pct=None, error_threshold_count=3, max_concurrency=5)
    r = await svc.create(spec, start=True)
    got = await _run_to_rest(svc, r.id)
    assert got["state"] == "paused" and "3 devices failed" in got["reason"]
    assert got["counts"]["failed"] == 3
    assert all(d["state"] == "pending" for d in got["devices"] if d["wave"] == 1)
    await svc.action(r.id, "retry")
    got = await _run_to_rest(svc, r.id)
    assert got["state"] == "completed" and got["counts"] == {"confirmed": 10}
    assert sorted(dep.started).count("big-0") == 2
    await svc.stop()


async def test_stall_below_success_threshold(store: SqliteStore) -> None:
    dep = ScriptedDeployer([f"big-{i}" for i in range(4)], fail={"big-0": 5})
    svc = await _service(store, dep)
    r = await svc.create(RolloutSpec(model="m", waves="2,4", error_threshold_pct=None), start=True)
    got = await _run_to_rest(svc, r.id)
    assert got["state"] == "paused" and "success threshold" in got["reason"]
    assert got["current_wave"] == 0
    await svc.stop()


async def test_pause_finishes_in_flight_and_resume_continues(store: SqliteStore) -> None:
    dep = ScriptedDeployer([f"big-{i}" for i in range(6)])
    dep.gate = asyncio.Event()
    svc = await _service(store, dep)
    r = await svc.create(RolloutSpec(model="m", max_concurrency=2), start=True)
    await _until_started(dep, 2)
    await svc.action(r.id, "pause")
    dep.gate.set()
    got = await _run_to_rest(svc, r.id)
    assert got["state"] == "paused" and got["counts"] == {"confirmed": 2, "pending": 4}
    with pytest.raises(InvalidAction):
        await svc.action(r.id, "pause")
    await svc.action(r.id, "resume")
    got = await _run_to_rest(svc, r.id)
    assert got["state"] == "completed" and got["counts"] == {"confirmed": 6}
    await svc.stop()


async def test_cancel_cancels_in_flight_jobs(store: SqliteStore) -> None:
    dep = ScriptedDeployer([f"big-{i}" for i in range(5)])
    dep.gate = asyncio.Event()
    svc = await _service(store, dep)
    r = await svc.create(RolloutSpec(model="m", max_concurrency=2), start=True)
    await _until_started(dep, 2)
    await svc.action(r.id, "cancel")
    got = await _run_to_rest(svc, r.id)
    assert got["state"] == "cancelled" and got["counts"] == {"cancelled": 5}
    assert len(dep.cancelled) == 2
    await svc.stop()


async def test_rate_cap_spaces_device_starts(store: SqliteStore) -> None:
    dep = ScriptedDeployer([f"big-{i}" for i in range(3)], delay=0)
    svc = await _service(store, dep)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await svc.create(RolloutSpec(model="m", rate_per_minute=300), start=True)  # one per 0.2 s
    got = await _run_to_rest(svc, r.id)
    assert got["counts"] == {"confirmed": 3}
    assert loop.time() - t0 >= 0.35
    await svc.stop()


async def test_restart_resumes_without_double_update(store: SqliteStore, tmp_path: Path) -> None:
    eps = [f"big-{i}" for i in range(6)]
    dep = ScriptedDeployer(eps)
    dep.gate = asyncio.Event()
    svc = await _service(store, dep)
    r = await svc.create(RolloutSpec(model="m", max_concurrency=2), start=True)
    await _until_started(dep, 2)
    await svc.stop()  # the server dies with two jobs in flight
    started_before = list(dep.started)

    dep2 = ScriptedDeployer(eps)  # a new process: the jobs were running on the devices meanwhile
    svc2 = await _service(store, dep2)
    got = await _run_to_rest(svc2, r.id)
    assert got["state"] == "completed" and got["counts"] == {"confirmed": 6}
    assert set(dep2.started).isdisjoint(started_before)  # re-attached by job id, not started again
    assert sorted(dep2.started + started_before) == sorted(eps)
    assert any(a["action"] == "rollout.resumed_after_restart" for a in await svc2.repo.audit_log(rollout_id=r.id))
    await svc2.stop()


async def test_dynamic_membership(store: SqliteStore) -> None:
    dep = ScriptedDeployer(["big-0"])
    dep.gate = asyncio.Event()
    svc = await _service(store, dep)
    r = await svc.create(RolloutSpec(model="m", dynamic=True, filter="ram_total > 100000"), start=True)
    dep.endpoints += ["big-9", "small-9"]
    await svc.device_registered("big-9")
    await svc.device_registered("small-9")
    dep.gate.set()
    got = await _run_to_rest(svc, r.id)
    assert {d["endpoint"] for d in got["devices"]} == {"big-0", "big-9"}
    assert got["counts"] == {"confirmed": 2}
    await svc.stop()


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="filter"):
        RolloutSpec(model="m", filter="__import__('os')")
    with pytest.raises(ValueError, match="wave"):
        RolloutSpec(model="m", waves="50%,10%")
    with pytest.raises(ValueError):
        RolloutSpec(model="m", max_concurrency=0)


@pytest.mark.parametrize("cached", [True, False])
async def test_running_rollouts_cache_follows_this_repository_writes(store: SqliteStore, cached: bool) -> None:
    """Every registration asks for the running rollouts (dynamic membership): on one node the answer is kept
    until a rollout is created or changes state or wave through the repository; without ``cache_running``
    (several nodes write the same rollouts) every call reads the store."""
    dep = ScriptedDeployer(["big-0"])
    dep.gate = asyncio.Event()
    repo = RolloutRepository(store.rollouts, store.audit, store.flush, cache_running=cached)
    svc = RolloutService(repo, dep)
    await svc.start()
    assert await repo.running() == []
    r = await svc.create(RolloutSpec(model="m", dynamic=True, filter="ram_total > 100000"), start=True)
    assert [x.id for x in await repo.running()] == [r.id]  # the create and the start invalidated []
    await store.rollouts.set_state(r.id, RolloutState.PAUSED)  # behind the repository's back
    assert [x.id for x in await repo.running()] == ([r.id] if cached else [])
    await store.rollouts.set_state(r.id, RolloutState.RUNNING)
    dep.endpoints += ["big-9", "big-10"]
    await svc.device_registered("big-9")
    await svc.action(r.id, "cancel")
    assert await repo.running() == []
    await svc.device_registered("big-10")  # the cancelled rollout takes no one
    assert {d.endpoint for d in await repo.devices(r.id)} == {"big-0", "big-9"}
    dep.gate.set()
    await svc.stop()
