"""Rollouts on three real ``serve`` nodes sharing one PostgreSQL database: exactly one node (the holder of the
lease ``rollout:<id>``) runs a rollout, targets are every node's devices, devices held by other nodes are updated
by their node (forwarded ``ota_start``), an operator pause recorded on a non-leader stops the leader's runner,
and SIGKILL of the leader hands the rollout to another node within the lease ttl plus a scan, every device
confirmed exactly once (one OTA job row and one install per device), also when the leader dies while delivering
to its own devices (their nodes-to-be adopt the jobs, keeping the rows).

Each node has its own data dir; they share the secrets dir (``tests/support/nodes.py``: the signing key the
simulated devices verify packages with), and packages live in the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from compilers import keys, package
from compilers.arena import plan_arena
from lwm2m_server.ota import builds
from lwm2m_server.store.postgres import PostgresStore
from simulator.profiles import FaultConfig
from tests.integration.rollouts.conftest import Fleet, InstallCounter
from tests.support.fleet import M4F, wait_for
from tests.support.nodes import Node, start_node
from tests.support.postgres import drop_pg_database, make_pg_database
from tests.support.shared import KWS

TTL = 2.0
ENV = {
    "TINYMLAAS_CLUSTER__LEASE_TTL_S": str(TTL),
    "TINYMLAAS_SERVER__REQUEST_TIMEOUT_S": "5",
    "TINYMLAAS_OTA__POLL_INTERVAL_S": "0.3",
    "TINYMLAAS_OTA__RETRY_BACKOFF_S": "0.2",
    "TINYMLAAS_OTA__TIMEOUT_S": "30",
}
IN_FLIGHT = {"compiling", "delivering", "installing"}


class Cluster:
    def __init__(self, tmp_path: Path, dsn: str) -> None:
        self.tmp_path = tmp_path
        self.dsn = dsn
        self.secrets = tmp_path / "secrets"  # start_node's shared secrets dir
        self.nodes: dict[str, Node] = {}
        self.fleet: Fleet | None = None
        self.http = httpx.AsyncClient(timeout=30)

    async def start(self, *names: str, env: dict[str, str] | None = None) -> None:
        for name in names:  # one at a time: the first makes the signing key and the admin token
            self.nodes[name] = await start_node(self.tmp_path / name, self.dsn,
                                                {**ENV, **(env or {}), "TINYMLAAS_CLUSTER__NODE_ID": f"node-{name}"})
        token = self.nodes[names[0]].token
        assert token is not None
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.fleet = Fleet(builds.server_public_key(self.secrets))

    async def wait_takeover(self, rid: str) -> str:
        """Wait until node a or b holds the rollout's lease (its leader c was killed); the new holder."""
        holder: str | None = None

        async def taken_over() -> bool:
            nonlocal holder
            holder = await self.holder("a", rid)
            return holder in ("node-a", "node-b")

        await wait_for(taken_over, TTL + 10, "another node to take the lease", step=0.05)
        assert holder is not None
        return holder

    def url(self, name: str) -> str:
        return self.nodes[name].url

    async def device(self, name: str, endpoint: str, **config: Any) -> None:
        assert self.fleet is not None
        await self.fleet.add(f"coap://127.0.0.1:{self.nodes[name].coap_port}", endpoint, M4F, **config)

        async def has_profile() -> bool:
            r = await self.http.get(f"{self.url(name)}/api/devices/{endpoint}")
            return r.status_code == 200 and r.json()["profile"] is not None

        await wait_for(has_profile, 15.0, f"profile of {endpoint}")

    async def move(self, endpoint: str, name: str) -> InstallCounter:
        """The device comes back (a reboot) and registers through node ``name``; returns its old install counter."""
        assert self.fleet is not None
        old = self.fleet.counters[endpoint]
        await self.fleet.devices[endpoint].stop(deregister=False)
        await self.device(name, endpoint)
        return old

    async def reconnect(self, endpoint: str, name: str) -> None:
        """The same device (its partial download, its install counter) now reaches node ``name``."""
        assert self.fleet is not None
        device = self.fleet.devices[endpoint]
        await device.stop(deregister=False)
        await asyncio.wait_for(device.start(f"coap://127.0.0.1:{self.nodes[name].coap_port}"), 10.0)

    async def upload_package(self, name: str) -> tuple[str, str]:
        tflite = KWS.read_bytes()
        blob = package.build_package(name="kws", version="7", variant="int8",
                                     arena_bytes=plan_arena(tflite).total_bytes, payload=tflite,
                                     signing_key=keys.load_or_create_signing_key(self.secrets))  # fmt: skip
        r = await self.http.post(f"{self.url(name)}/api/packages", params={"kind": "model"}, content=blob,
                                 headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status_code in (200, 201), r.text
        return str(r.json()["sha256"]), hashlib.sha256(tflite).hexdigest()

    async def rollout(self, name: str, rollout_id: str) -> dict[str, Any]:
        r = await self.http.get(f"{self.url(name)}/api/rollouts/{rollout_id}", params={"limit": 1000})
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def holder(self, name: str, rollout_id: str) -> str | None:
        view = (await self.http.get(f"{self.url(name)}/api/cluster")).json()
        held = [x["holder"] for x in view["leases"] if x["name"] == f"rollout:{rollout_id}" and x["valid"]]
        return held[0] if held else None

    async def wait_state(self, name: str, rollout_id: str, states: set[str], timeout: float) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal last
            last = await self.rollout(name, rollout_id)
            return last["state"] in states and not IN_FLIGHT & set(last["counts"])

        try:
            await wait_for(reached, timeout, f"rollout in {states}", step=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last: {last.get('state')} {last.get('counts')}") from None
        return last

    async def audit(self, name: str, rollout_id: str) -> list[dict[str, Any]]:
        r = await self.http.get(f"{self.url(name)}/api/audit", params={"rollout": rollout_id})
        assert r.status_code == 200, r.text
        return list(r.json())

    async def jobs(self, endpoints: list[str]) -> dict[str, list[str]]:
        """Each device's OTA job rows (their phases), read through the store's repository."""
        store = PostgresStore(self.dsn)
        await store.open()
        try:
            return {ep: [j.phase.value for j in await store.ota_jobs.for_endpoint(ep)] for ep in endpoints}
        finally:
            await store.close()

    async def job_rows(self, endpoints: list[str]) -> dict[str, int]:
        return {ep: len(phases) for ep, phases in (await self.jobs(endpoints)).items()}

    def assert_once(self, endpoints: list[str], payload_sha: str) -> None:
        assert self.fleet is not None
        for ep in endpoints:
            counter = self.fleet.counters[ep]
            assert counter.installs == 1 and counter.sha == payload_sha, (ep, counter.installs, counter.sha)

    async def close(self) -> None:
        if self.fleet is not None:
            await self.fleet.stop()
        await self.http.aclose()
        for node in self.nodes.values():
            await node.kill()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    dsn = await make_pg_database()
    c = Cluster(tmp_path, dsn)
    try:
        yield c
    finally:
        await c.close()
        await drop_pg_database(dsn)


@pytest.mark.slow
async def test_one_leader_fleet_wide_targets_pause_on_another_node_and_late_joiner(cluster: Cluster) -> None:
    await cluster.start("a", "b", "c")
    endpoints = [f"{n}-{i}" for n in "abc" for i in range(2)]
    for ep in endpoints:
        await cluster.device(ep[0], ep)
    sha, payload_sha = await cluster.upload_package("a")
    created = await cluster.http.post(f"{cluster.url('b')}/api/rollouts", json={
        "model": f"package:{sha}", "start": True, "max_concurrency": 1, "dynamic": True})
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert created.json()["total"] == 6  # every node's devices, not only b's
    assert {await cluster.holder(n, rid) for n in "abc"} == {"node-b"}

    async def confirmed(n: int) -> bool:
        return (await cluster.rollout("c", rid))["counts"].get("confirmed", 0) >= n

    await wait_for(lambda: confirmed(1), 60, "a first device confirmed", step=0.1)
    assert await cluster.holder("a", rid) == "node-b"
    paused = await cluster.http.post(f"{cluster.url('a')}/api/rollouts/{rid}/pause")  # a is not the leader
    assert paused.status_code == 200 and paused.json()["state"] == "paused", paused.text
    at_pause = await cluster.wait_state("a", rid, {"paused"}, TTL + 30)
    assert at_pause["counts"].get("pending", 0) > 0  # b's runner stopped starting devices
    await asyncio.sleep(TTL)
    assert (await cluster.rollout("b", rid))["counts"] == at_pause["counts"]
    assert await cluster.holder("b", rid) is None  # b's runner exited and released the lease

    resumed = await cluster.http.post(f"{cluster.url('c')}/api/rollouts/{rid}/resume")
    assert resumed.status_code == 200, resumed.text
    assert await cluster.holder("a", rid) == "node-c"  # c took the free lease on resume
    await cluster.device("a", "a-late")  # registers through a non-leader: joins the running rollout
    done = await cluster.wait_state("b", rid, {"completed", "paused", "failed"}, 120)
    assert done["state"] == "completed" and done["counts"] == {"confirmed": 7}, done["counts"]
    cluster.assert_once([*endpoints, "a-late"], payload_sha)
    assert set((await cluster.job_rows([*endpoints, "a-late"])).values()) == {1}
    actions = [e["action"] for e in await cluster.audit("a", rid)]
    assert "device.joined" in actions and "rollout.taken_over" not in actions  # no leader ever died

    again = await cluster.http.post(f"{cluster.url('a')}/api/rollouts", json={"model": f"package:{sha}",
                                                                             "start": True})
    assert again.status_code == 201, again.text  # led by a: it asks each device's node what the device runs
    second = await cluster.wait_state("c", again.json()["id"], {"completed", "paused", "failed"}, 60)
    assert second["state"] == "completed" and second["counts"] == {"skipped": 7}, second["counts"]
    assert set((await cluster.job_rows([*endpoints, "a-late"])).values()) == {1}


@pytest.mark.slow
async def test_sigkill_of_the_leader_hands_the_rollout_over(cluster: Cluster) -> None:
    await cluster.start("a", "b", "c")
    # The leader c holds only devices that come last (devices start in endpoint order, one at a time), so none of
    # them has a job when c dies: adopting a dead node's running OTA jobs is another branch's work.
    endpoints = [f"{n}-{i}" for n in "ab" for i in range(3)]
    late = ["z-c-0", "z-c-1"]
    for ep in endpoints:
        await cluster.device(ep[0], ep)
    for ep in late:
        await cluster.device("c", ep)
    sha, payload_sha = await cluster.upload_package("a")
    created = await cluster.http.post(f"{cluster.url('c')}/api/rollouts", json={
        "model": f"package:{sha}", "start": True, "max_concurrency": 1})
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert await cluster.holder("a", rid) == "node-c"

    async def confirmed(n: int) -> bool:
        return (await cluster.rollout("a", rid))["counts"].get("confirmed", 0) >= n

    await wait_for(lambda: confirmed(2), 90, "two devices confirmed", step=0.1)
    await cluster.nodes["c"].kill()
    killed = time.monotonic()
    states = {d["endpoint"]: d["state"] for d in (await cluster.rollout("a", rid))["devices"]}
    assert {states[ep] for ep in late} == {"pending"}, states
    before = [await cluster.move(ep, "a") for ep in late]  # c's devices re-register through a live node
    new_holder = await cluster.wait_takeover(rid)
    elapsed = time.monotonic() - killed
    assert elapsed < TTL + TTL / 3 + 1.0, elapsed  # expiry (<= ttl) + one scan (ttl/3) + slack
    done = await cluster.wait_state("a", rid, {"completed", "paused", "failed"}, 120)
    assert done["state"] == "completed" and done["counts"] == {"confirmed": 8}, done
    cluster.assert_once([*endpoints, *late], payload_sha)
    assert all(counter.installs == 0 for counter in before)
    assert set((await cluster.job_rows([*endpoints, *late])).values()) == {1}
    taken = [e["detail"] for e in await cluster.audit("b", rid) if e["action"] == "rollout.taken_over"]
    assert taken == [{"from": "node-c", "to": new_holder}], taken


@pytest.mark.slow
async def test_sigkill_of_the_leader_mid_delivery_of_its_own_devices(cluster: Cluster) -> None:
    """Issue 10 with the leader's devices downloading: c leads and runs the OTA jobs of its own (slow) devices;
    SIGKILL c mid-delivery, the devices register again through a and b, which adopt the jobs (same rows) while
    one of them takes the rollout over; b's own slow device is mid-delivery for leader c too (a forwarded job). Every
    device confirmed exactly once, one SUCCEEDED job row each."""
    await cluster.start("a", "b", "c", env={"TINYMLAAS_OTA__BLOCK_SIZE": "512"})
    others = ["a-0", "a-1", "b-0", "b-1"]  # the other nodes' devices
    slow = ["c-0", "c-1"]  # the leader's own devices, on a slow link: ~100 blocks at >= 40 ms each
    for ep in others:
        await cluster.device(ep[0], ep)
    for ep in slow:
        await cluster.device("c", ep, faults=FaultConfig(delay_ms=40))
    await cluster.device("b", "b-slow", faults=FaultConfig(delay_ms=40))  # b runs its job for leader c meanwhile
    others.append("b-slow")
    sha, payload_sha = await cluster.upload_package("a")
    created = await cluster.http.post(f"{cluster.url('c')}/api/rollouts", json={
        "model": f"package:{sha}", "start": True, "max_concurrency": 7, "method": "push"})
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert await cluster.holder("a", rid) == "node-c"
    jobs: dict[str, dict[str, Any]] = {}

    async def c_mid_delivery() -> bool:
        for ep in slow:
            r = await cluster.http.get(f"{cluster.url('c')}/api/devices/{ep}/update")
            jobs[ep] = (r.json().get("job") or {}) if r.status_code == 200 else {}
        return all(j.get("phase") == "delivering" and j["progress"].get("bytes", 0) >= 2048 for j in jobs.values())

    await wait_for(c_mid_delivery, 30, "c's jobs of its own devices mid-delivery", step=0.05)
    await cluster.nodes["c"].kill()
    killed = time.monotonic()
    assert all(j["progress"]["bytes"] < 40_000 for j in jobs.values()), jobs  # far from the end of the download
    states = {d["endpoint"]: d["state"] for d in (await cluster.rollout("a", rid))["devices"]}
    assert {states[ep] for ep in [*slow, "b-slow"]} <= IN_FLIGHT, states
    await cluster.reconnect("c-0", "a")  # at once: its job's owner c is still "alive" (heartbeat), the session moved
    new_holder = await cluster.wait_takeover(rid)
    assert time.monotonic() - killed < TTL + TTL / 3 + 2.0  # expiry (<= ttl) + one scan (ttl/3) + slack
    await asyncio.sleep(max(0.0, killed + 2.0 - time.monotonic()))  # past the node timeout (1.5 s): c is dead
    await cluster.reconnect("c-1", "b")  # after the takeover: the new leader waits for a job a dead node owned
    done = await cluster.wait_state("a", rid, {"completed", "paused", "failed"}, 60)
    assert done["state"] == "completed" and done["counts"] == {"confirmed": 7}, done
    cluster.assert_once([*others, *slow], payload_sha)
    store = PostgresStore(cluster.dsn)
    await store.open()
    try:
        rows = {ep: await store.ota_jobs.for_endpoint(ep) for ep in [*others, *slow]}
        notes = {ep: [h["note"] for h in await store.ota_jobs.history(jobs[ep]["id"])] for ep in slow}
    finally:
        await store.close()
    assert {ep: [j.phase.value for j in r] for ep, r in rows.items()} == {ep: ["succeeded"] for ep in rows}
    assert {ep: rows[ep][0].id for ep in slow} == {ep: jobs[ep]["id"] for ep in slow}  # adopted: the same rows
    assert {ep: rows[ep][0].node_id for ep in slow} == {"c-0": "node-a", "c-1": "node-b"}
    for ep, history in notes.items():  # the adopter resumed the interrupted job; one Update executed
        assert "resumed from delivering" in history, (ep, history)
        assert history.count("execute /5/0/2") == 1, (ep, history)
    taken = [e["detail"] for e in await cluster.audit("b", rid) if e["action"] == "rollout.taken_over"]
    assert taken == [{"from": "node-c", "to": new_holder}], taken


async def test_cancel_on_the_leader_cancels_the_jobs_another_node_runs(cluster: Cluster) -> None:
    await cluster.start("a", "b")
    endpoints = ["a-slow-0", "a-slow-1"]
    for ep in endpoints:  # a slow link: the downloads are still running when the operator cancels
        await cluster.device("a", ep, faults=FaultConfig(delay_ms=40))
    sha, _ = await cluster.upload_package("a")
    created = await cluster.http.post(f"{cluster.url('b')}/api/rollouts", json={
        "model": f"package:{sha}", "start": True, "method": "pull"})
    assert created.status_code == 201, created.text
    rid = created.json()["id"]

    async def delivering() -> bool:
        return (await cluster.rollout("b", rid))["counts"].get("delivering", 0) == 2

    await wait_for(delivering, 30, "both jobs delivering (started by a for leader b)", step=0.05)
    cancelled = await cluster.http.post(f"{cluster.url('b')}/api/rollouts/{rid}/cancel")  # b forwards to a
    assert cancelled.status_code == 200, cancelled.text
    done = await cluster.wait_state("b", rid, {"cancelled"}, 30)
    assert done["counts"] == {"cancelled": 2}, done
    jobs = await cluster.jobs(endpoints)

    async def jobs_cancelled() -> bool:
        nonlocal jobs
        jobs = await cluster.jobs(endpoints)
        return all(phases == ["cancelled"] for phases in jobs.values())

    await wait_for(jobs_cancelled, 15, "a's jobs cancelled")
    assert cluster.fleet is not None
    assert all(cluster.fleet.counters[ep].installs == 0 for ep in endpoints)
