"""The repository contract, run on SQLite and on PostgreSQL (see ``conftest.make_store``): what every service
relies on, through the typed repositories only — write-behind then read-your-writes, coalescing, restarts,
ordering, upserts, filters, and the error a violated constraint raises."""

from __future__ import annotations

import asyncio

import pytest

from lwm2m_server.ota.job_state import Cause, JobPhase
from lwm2m_server.ota.package_info import PackageInfo
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.registration import Registration
from lwm2m_server.rollouts.model import Build, Incompatible, RolloutSpec
from lwm2m_server.rollouts.states import DeviceState, RolloutState
from lwm2m_server.store.repositories import BootstrapRow, QueuedRow, SentValue, TokenRow
from lwm2m_server.store.retention import DAY_S, RetentionPolicy
from tests.unit.store.conftest import StoreFactory


def _reg(ep: str, reg_id: str, **kw: object) -> Registration:
    return Registration(ep, reg_id, "127.0.0.1", 5683, 300, "1.1", "U", False, **kw)  # type: ignore[arg-type]


async def test_registrations_write_behind_coalesce_and_survive_reopen(make_store: StoreFactory) -> None:
    store = await make_store(batch_window_ms=20)
    for i in range(50):
        await store.save_registration(_reg("dev-a", f"r{i}", content_formats=frozenset({0, 112})))
    await store.save_registration(_reg("dev-b", "rb"))
    await store.save_registration(_reg("dev-c", "rc"))
    await store.delete_registration("dev-c")
    regs = {r.endpoint: r for r in await store.load_registrations()}  # read-your-writes
    assert set(regs) == {"dev-a", "dev-b"}
    assert regs["dev-a"].reg_id == "r49" and regs["dev-a"].content_formats == frozenset({0, 112})
    await store.save_registration(_reg("dev-z", "rb"))  # a reused reg_id replaces its old holder (soft state)
    assert {r.endpoint for r in await store.load_registrations()} == {"dev-a", "dev-z"}
    await store.close()
    again = await make_store()
    assert {r.endpoint for r in await again.load_registrations()} == {"dev-a", "dev-z"}


async def test_profiles_and_events(make_store: StoreFactory) -> None:
    store = await make_store()
    await store.save_profile("d1", {"ram": 1})
    await store.save_profile("d1", {"ram": 2, "ops": ["conv"]})
    assert await store.load_profile("d1") == {"ram": 2, "ops": ["conv"]}
    assert await store.load_profile("nope") is None
    assert await store.load_profiles() == {"d1": {"ram": 2, "ops": ["conv"]}}
    for i in range(5):
        await store.append_event("notify", "d1" if i % 2 == 0 else "d2", {"i": i, "b": b"\x01"}, ts=100.0 + i)
    store.append_event_nowait("registered", "d1", {"x": 1}, ts=200.0)
    assert [e["data"]["i"] for e in await store.events(type="notify")] == [0, 1, 2, 3, 4]
    assert [e["data"]["i"] for e in await store.events(endpoint="d1", type="notify", limit=2)] == [2, 4]
    assert [e["type"] for e in await store.events(since=104.0)] == ["notify", "registered"]
    assert (await store.events(type="notify"))[0]["data"]["b"] == "01"
    await store.close()
    store.append_event_nowait("late", None, {})  # after close: dropped, no error


async def test_event_retention_by_age_and_rows(make_store: StoreFactory) -> None:
    policy = RetentionPolicy(max_age_s=DAY_S, max_rows=3, interval_s=3600)
    store = await make_store(retention=policy)
    import time

    now = time.time()
    for i in range(6):
        await store.append_event("e", None, {"i": i}, ts=now - (2 * DAY_S if i < 2 else 0))
    await store.prune_events(policy, now=now)  # type: ignore[attr-defined]
    assert [e["data"]["i"] for e in await store.events()] == [3, 4, 5]


async def test_queue_rows(make_store: StoreFactory) -> None:
    store = await make_store()
    q = store.queue
    await q.add(QueuedRow(2, "d1", '{"m":"GET"}', b"\x00\xff", 5.0, 1.0))
    await q.add(QueuedRow(1, "d1", "{}", b"", 5.0, 1.0))
    await q.add(QueuedRow(3, "d2", "{}", b"x", 2.5, 2.0))
    assert [r.seq for r in await q.load()] == [1, 2, 3]
    assert (await q.load())[1].payload == b"\x00\xff"
    await q.remove(1)
    await q.remove_endpoint("d2")
    assert [(r.seq, r.endpoint, r.timeout) for r in await q.load()] == [(2, "d1", 5.0)]
    with pytest.raises(Exception):  # noqa: B017 - the driver's own integrity error, raised to the caller
        await q.add(QueuedRow(2, "d1", "{}", b"", 1.0, 1.0))
    assert len(await q.load()) == 1


async def test_ota_jobs_and_history(make_store: StoreFactory) -> None:
    store = await make_store()
    jobs = store.ota_jobs
    a = JobRecord(endpoint="d1", package_sha256="ab" * 32, kind="model", id="a", created_at=1.0,
                  options={"timeout_s": 3.0})
    b = JobRecord(endpoint="d1", package_sha256="cd" * 32, kind="firmware", id="b", created_at=2.0)
    await jobs.save(a, ("queued", "queued", "created"))
    await jobs.save(b, ("queued", "queued", "created"))
    a.phase, a.attempt, a.cause, a.result, a.progress = JobPhase.FAILED, 2, Cause.NOT_FITTING, 3, {"bytes": 5}
    await jobs.save(a, ("updating", "failed", "out of RAM"))
    await jobs.save(a)  # an update without a transition: no history row
    assert await jobs.get("a") == a
    assert await jobs.get("zzz") is None
    assert [j.id for j in await jobs.for_endpoint("d1")] == ["b", "a"]  # newest first
    assert [j.id for j in await jobs.for_endpoint("d1", limit=1)] == ["b"]
    assert [j.id for j in await jobs.in_phases(["queued", "failed"])] == ["a", "b"]
    assert await jobs.in_phases([]) == []
    assert [(h["to_phase"], h["note"]) for h in await jobs.history("a")] == [("queued", "created"),
                                                                          ("failed", "out of RAM")]
    assert await jobs.count_retried() == 1


async def test_ota_job_adoption_is_one_conditional_update(make_store: StoreFactory) -> None:
    store = await make_store()
    jobs = store.ota_jobs
    job = JobRecord(endpoint="d1", package_sha256="ab" * 32, kind="firmware", id="j", node_id="node-a",
                    phase=JobPhase.DOWNLOADING)
    await jobs.save(job, ("queued", "queued", "created"))
    assert not await jobs.adopt("j", "node-x", "node-b")  # not the owner any more (or never): nothing moves
    assert (await jobs.get("j")).node_id == "node-a"  # type: ignore[union-attr]
    results = await asyncio.gather(jobs.adopt("j", "node-a", "node-b"), jobs.adopt("j", "node-a", "node-c"))
    assert sorted(results) == [False, True]  # two nodes race for a dead node's job: exactly one wins
    winner = "node-b" if results[0] else "node-c"
    assert (await jobs.get("j")).node_id == winner  # type: ignore[union-attr]
    job.phase = JobPhase.FAILED  # the old owner, unaware, writes on: the new owner's row is not overwritten
    await jobs.save(job, ("downloading", "failed", "stale"))
    assert [h["note"] for h in await jobs.history("j")] == ["created"]  # nor its history
    stored = await jobs.get("j")
    assert stored is not None and (stored.phase, stored.node_id) == (JobPhase.DOWNLOADING, winner)
    stored.phase = JobPhase.SUCCEEDED  # the owner's own writes apply
    await jobs.save(stored, ("downloading", "succeeded", "done"))
    assert [h["note"] for h in await jobs.history("j")] == ["created", "done"]
    assert (await jobs.get("j")).phase is JobPhase.SUCCEEDED  # type: ignore[union-attr]
    unowned = JobRecord(endpoint="d2", package_sha256="ab" * 32, kind="firmware", id="u")  # one node: no owner
    await jobs.save(unowned)
    unowned.attempt = 2
    await jobs.save(unowned)
    assert (await jobs.get("u")).attempt == 2  # type: ignore[union-attr]
    assert await jobs.adopt("u", None, "node-b") and not await jobs.adopt("u", None, "node-c")


async def test_concurrent_job_transitions_share_one_commit(make_store: StoreFactory) -> None:
    """A job row and its history row are committed together, and concurrent jobs share the commit: 40 jobs'
    transitions queued within one batch window take one transaction (two, if row and history went apart)."""
    store = await make_store(batch_window_ms=200.0)
    writer = store.writer  # type: ignore[attr-defined]
    await store.flush()
    before = writer.batches_committed
    records = [JobRecord(endpoint=f"d{i}", package_sha256="ab" * 32, kind="model", id=f"j{i}") for i in range(40)]
    await asyncio.gather(*(store.ota_jobs.save(r, ("queued", "queued", "created")) for r in records))
    assert writer.batches_committed - before == 1
    for r in records[:3]:
        assert await store.ota_jobs.get(r.id) == r
        assert [h["note"] for h in await store.ota_jobs.history(r.id)] == ["created"]


async def test_packages_are_insert_once(make_store: StoreFactory) -> None:
    store = await make_store()
    info = PackageInfo("ab" * 32, "model", 10, "m", "1", "cd" * 32, "int8", 2048, 5.0)
    await store.packages.add(info)
    await store.packages.add(PackageInfo("ab" * 32, "model", 99, "other", "2", "ef" * 32))  # immutable: ignored
    assert await store.packages.get("ab" * 32) == info
    assert await store.packages.get("00" * 32) is None
    assert await store.packages.all() == [info]
    assert await store.packages.data("ab" * 32) is None and await store.packages.without_data() == ["ab" * 32]
    await store.packages.put_data("ab" * 32, b"\x00bytes\xff")
    await store.packages.put_data("ab" * 32, b"other")  # immutable: ignored
    assert await store.packages.data("ab" * 32) == b"\x00bytes\xff"
    with_bytes = PackageInfo("12" * 32, "firmware", 3, "", "", "12" * 32, created_at=6.0)
    await store.packages.add(with_bytes, b"abc")  # row and bytes in one commit
    assert await store.packages.data("12" * 32) == b"abc" and await store.packages.without_data() == []


async def test_rollout_tables(make_store: StoreFactory) -> None:
    store = await make_store()
    t = store.rollouts
    row = await t.create(RolloutSpec(model="kws", name="r"))
    await t.add_devices(row.id, [(0, "d1", "c1"), (0, "d2", "c1"), (1, "d3", None)])
    await t.add_devices(row.id, [(5, "d1", "other")])  # already a member: ignored
    await t.set_wave(row.id, 0, 2)
    await t.set_state(row.id, RolloutState.RUNNING)
    await t.set_device(row.id, "d1", DeviceState.DELIVERING, job_id="j1", attempt=True)
    await t.set_device(row.id, "d1", DeviceState.FAILED, cause="timeout")  # job id kept (COALESCE)
    got = await t.get(row.id)
    assert got is not None and (got.state, got.wave_count, got.spec.name) == (RolloutState.RUNNING, 2, "r")
    assert [r.id for r in await t.list_rollouts(RolloutState.RUNNING)] == [row.id]
    assert await t.list_rollouts(RolloutState.PAUSED) == []
    d1 = (await t.devices(row.id, state=DeviceState.FAILED))[0]
    assert (d1.endpoint, d1.wave, d1.job_id, d1.attempts, d1.cause) == ("d1", 0, "j1", 1, "timeout")
    assert [d.endpoint for d in await t.devices(row.id)] == ["d1", "d2", "d3"]
    assert [d.endpoint for d in await t.devices(row.id, wave=0, limit=1, offset=1)] == ["d2"]
    counts = {(c["wave"], c["class_key"], c["state"]): c["n"] for c in await t.counts(row.id)}
    assert counts == {(0, "c1", "failed"): 1, (0, "c1", "pending"): 1, (1, None, "pending"): 1}
    assert await t.class_members(row.id) == {"c1": "d1", "unknown": "d3"}
    await t.save_class(row.id, {"ram": 1}, Incompatible("c1", "too big", {"r": 1}))
    await t.save_class(row.id, {"ram": 1}, Build("c1", "int8", "aa", 100, 2048, 0.9, {"r": 2}, "bb"))  # upsert
    [c] = await t.classes(row.id)
    assert (c["variant"], c["size"], c["reason"], c["target"]) == ("int8", 100, None, {"ram": 1})


async def test_audit_tokens_send_values_and_stats(make_store: StoreFactory) -> None:
    store = await make_store()
    await store.audit.record("rollout.created", rollout_id="r1", actor="op", detail={"n": 1})
    await store.audit.record("auth.refused", actor="1.2.3.4")
    await store.audit.record("auth.token.created", endpoint="d1")
    assert [e["action"] for e in await store.audit.entries(action_prefix="auth.")] == ["auth.refused",
                                                                                    "auth.token.created"]
    assert (await store.audit.entries(rollout_id="r1"))[0]["detail"] == {"n": 1}
    assert len(await store.audit.entries(limit=1, offset=2)) == 1
    row = TokenRow("t1", "admin", "admin", "h" * 64, 1.0, None)
    await store.tokens.insert(row)
    revoked_at = await store.tokens.revoke("t1")
    assert await store.tokens.all() == [TokenRow("t1", "admin", "admin", "h" * 64, 1.0, revoked_at)]
    with pytest.raises(Exception):  # noqa: B017 - duplicate token hash
        await store.tokens.insert(TokenRow("t2", "x", "viewer", "h" * 64, 2.0, None))
    values = [SentValue("/3/0/1", 10.0, "a"), SentValue("/3/0/10", 11.0, {"hex": "00"}), SentValue("/5/0/3", 12.0, 2)]
    await store.send_values.add("d1", values, received_at=13.0)
    assert [v["path"] for v in await store.send_values.query("d1", path="/3/0/1")] == ["/3/0/1"]
    assert [v["value"] for v in await store.send_values.query("d1", since=11.0, until=12.0)] == [{"hex": "00"}, 2]
    await store.ota_jobs.save(JobRecord(endpoint="d1", package_sha256="ab" * 32, kind="model", id="j"))
    r = await store.rollouts.create(RolloutSpec(model="kws"))
    await store.rollouts.add_devices(r.id, [(0, "d1", None)])
    assert await store.stats.ota_phases() == [("queued", 1)]
    assert await store.stats.rollout_states() == [("created", 1)]
    assert await store.stats.rollout_devices() == [(r.id, "pending", 1)]


async def test_concurrent_writers_share_the_store(make_store: StoreFactory) -> None:
    store = await make_store()
    await asyncio.gather(*(store.audit.record(f"a.{i}") for i in range(40)),
                         *(store.save_registration(_reg(f"d{i}", f"r{i}")) for i in range(40)))
    assert len(await store.audit.entries()) == 40
    assert len(await store.load_registrations()) == 40


async def test_leases_one_holder_until_expiry(make_store: StoreFactory) -> None:
    store = await make_store()
    leases = store.leases
    assert await leases.acquire("rollout:r1", "node-a", 10.0, now=100.0)
    assert not await leases.acquire("rollout:r1", "node-b", 10.0, now=105.0)  # a's is valid
    assert await leases.acquire("rollout:r1", "node-a", 10.0, now=108.0)  # renewed until 118
    assert not await leases.acquire("rollout:r1", "node-b", 10.0, now=115.0)
    assert await leases.acquire("rollout:r1", "node-b", 10.0, now=118.5)  # a stopped renewing: b takes over
    assert not await leases.acquire("rollout:r1", "node-a", 10.0, now=119.0)
    await leases.release("rollout:r1", "node-a")  # not a's any more: no effect
    assert [(lease.name, lease.holder) for lease in await leases.leases()] == [("rollout:r1", "node-b")]
    await leases.release("rollout:r1", "node-b")
    assert await leases.leases() == []


async def test_leases_race_has_exactly_one_winner(make_store: StoreFactory) -> None:
    first = await make_store()
    second = await make_store()  # another node on the same data
    for round_ in range(5):
        now = 1000.0 + 100 * round_  # every earlier lease has expired
        won = await asyncio.gather(*(s.leases.acquire("rollout:x", f"node-{i}-{round_}", 30.0, now=now)
                                     for i, s in enumerate([first, second, first, second])))
        assert sum(won) == 1, won


async def test_bootstrap_configs(make_store: StoreFactory) -> None:
    store = await make_store()
    table = store.bootstrap
    first = BootstrapRow("bs-1", "coaps://h:5684", "psk", 300, "U", 1, True, 1.5)
    await table.put(first)
    await table.put(BootstrapRow("bs-2", "coap://h", "nosec", 2**31 - 1, "UQ", 65534, False, 2.0))
    assert await table.get("bs-1") == first
    replaced = BootstrapRow("bs-1", "coaps://other:5684", "psk", 60, "UQ", 2, False, 3.0)
    await table.put(replaced)
    rows = await table.all()
    assert [r.endpoint for r in rows] == ["bs-1", "bs-2"] and rows[0] == replaced
    assert rows[1].delete_first is False and rows[1].lifetime == 2**31 - 1
    assert await table.remove("bs-1") is True and await table.remove("bs-1") is False
    assert await table.get("bs-1") is None
    await store.close()
    again = await make_store()
    assert [r.endpoint for r in await again.bootstrap.all()] == ["bs-2"]


async def test_key_fingerprints_first_writer_wins(make_store: StoreFactory) -> None:
    store = await make_store()
    assert await store.key_fingerprints.claim("signing", "aa11", "node-a", 1.0) == ("aa11", "node-a")
    assert await store.key_fingerprints.claim("signing", "bb22", "node-b", 2.0) == ("aa11", "node-a")
    assert await store.key_fingerprints.claim("signing", "aa11", "node-b", 3.0) == ("aa11", "node-a")
    assert await store.key_fingerprints.claim("credentials", "cc33", "node-b", 4.0) == ("cc33", "node-b")


async def test_every_repository_is_wired_to_its_own_store(make_store: StoreFactory) -> None:
    """Both backends carry the one set of repositories (``store.sql.wiring``), each over the store's own engine."""
    from lwm2m_server.store.sql.wiring import SqlRepositories

    store = await make_store(retention=RetentionPolicy(DAY_S, 10, 60))
    names = list(SqlRepositories.__annotations__)
    assert len(names) == 13 and "queue" in names and "key_fingerprints" in names
    assert all(getattr(store, name)._sql is store for name in names)
    assert store.send_values.retention == RetentionPolicy(DAY_S, 10, 60)  # type: ignore[attr-defined]
