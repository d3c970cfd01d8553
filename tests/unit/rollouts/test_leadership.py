"""Two rollout services ("nodes") on one store with leases (ttl 0.3 s): a rollout runs only on its lease holder,
an operator action recorded on the other node reaches the leader's runner, a leader whose lease is taken stops
without touching the rollout's state, and a scan takes over a rollout whose leader stopped renewing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from lwm2m_server.rollouts.leadership import RolloutLeadership, lease_name
from lwm2m_server.rollouts.model import RolloutSpec
from lwm2m_server.rollouts.repository import RolloutRepository
from lwm2m_server.rollouts.service import RolloutService
from lwm2m_server.store.sqlite import SqliteStore
from tests.unit.rollouts.test_engine import ScriptedDeployer

TTL = 0.3
EPS = [f"big-{i}" for i in range(4)]


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    a, b = SqliteStore(tmp_path / "t.sqlite3"), SqliteStore(tmp_path / "t.sqlite3")
    await a.open()
    await b.open()
    yield a, b
    await b.close()
    await a.close()


async def _node(store: SqliteStore, name: str, deployer: ScriptedDeployer) -> RolloutService:
    svc = RolloutService(RolloutRepository(store.rollouts, store.audit, store.flush), deployer,
                         leadership=RolloutLeadership(store.leases, name, TTL))
    await svc.start()
    return svc


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_runs_on_the_leader_only_and_pause_via_the_other_node(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    dep_a, dep_b = ScriptedDeployer(EPS, delay=0.05), ScriptedDeployer(EPS, delay=0.05)
    dep_b.gate = asyncio.Event()
    a, b = await _node(stores[0], "node-a", dep_a), await _node(stores[1], "node-b", dep_b)
    try:
        r = await b.create(RolloutSpec(model="m", max_concurrency=1), start=True)  # created and led by b
        assert b.running_here(r.id) and await b.leadership.holder(r.id) == "node-b"  # type: ignore[union-attr]
        await asyncio.sleep(3 * TTL)  # a's scans see a valid lease: a does not run it
        assert not a.running_here(r.id) and dep_a.started == []
        paused = await a.action(r.id, "pause")  # recorded by a; b's runner notices at its next renewal
        assert paused.state.value == "paused"
        dep_b.gate.set()
        await asyncio.wait_for(b.wait_idle(r.id), 5)
        got = await a.get(r.id)
        assert got["state"] == "paused" and got["counts"] == {"confirmed": 1, "pending": 3}
        assert await a.leadership.holder(r.id) is None  # type: ignore[union-attr]  # b released it

        await a.action(r.id, "resume")  # the lease is free: a leads now
        assert a.running_here(r.id)
        await asyncio.wait_for(a.wait_idle(r.id), 5)
        got = await b.get(r.id)
        assert got["state"] == "completed" and got["counts"] == {"confirmed": 4}
        assert sorted(dep_a.started + dep_b.started) == EPS  # every device started once, on one node or the other
    finally:
        await a.stop()
        await b.stop()


async def test_lost_lease_stops_the_runner_and_a_scan_takes_over(stores: tuple[SqliteStore, SqliteStore]) -> None:
    dep_a, dep_b = ScriptedDeployer(EPS), ScriptedDeployer(EPS)
    dep_a.gate = asyncio.Event()  # a's jobs hang: a is the leader when the lease is lost
    a, b = await _node(stores[0], "node-a", dep_a), await _node(stores[1], "node-b", dep_b)
    try:
        r = await a.create(RolloutSpec(model="m", max_concurrency=2), start=True)
        await _until(lambda: asyncio.sleep(0, len(dep_a.started) == 2), 5, "two devices started on a")
        # another holder takes the lease as though a's had expired (a paused process, a clock jump)
        assert await stores[1].leases.acquire(lease_name(r.id), "node-z", TTL, now=time.time() + TTL)
        await _until(lambda: asyncio.sleep(0, not a.running_here(r.id)), 2 * TTL, "a's runner to stop")
        assert (await a.repo.get(r.id)).state.value == "running"  # type: ignore[union-attr]  # left as it was
        # node-z never renews: after its lease expires, a's or b's scan takes the rollout over
        await _until(lambda: asyncio.sleep(0, a.running_here(r.id) or b.running_here(r.id)), 4 * TTL, "a takeover")
        dep_a.gate.set()
        await _until(lambda: _state(a, r.id, "completed"), 5, "completion")
        log = await a.repo.audit_log(rollout_id=r.id)
        taken = [e for e in log if e["action"] == "rollout.taken_over"]
        assert taken and taken[-1]["detail"]["from"] == "node-z", taken
        got = await a.get(r.id)
        assert got["counts"] == {"confirmed": 4}
        # the two jobs a had started were re-attached by job id, never started again
        assert sorted(set(dep_a.started) | set(dep_b.started)) == EPS
        assert len(dep_a.started) + len(dep_b.started) == len(EPS)
    finally:
        await a.stop()
        await b.stop()


async def _state(svc: RolloutService, rollout_id: str, state: str) -> bool:
    got = await svc.repo.get(rollout_id)
    return got is not None and got.state.value == state
