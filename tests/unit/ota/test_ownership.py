"""Job ownership over a real store: a node resumes its own jobs and claims unowned ones once; it adopts another
node's job only when that node is dead or no longer holds the device, and then only one node wins."""

from __future__ import annotations

import time

from lwm2m_server.ota.job_state import JobPhase
from lwm2m_server.ota.ownership import JobOwnership
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.store.repositories import NodeRow
from lwm2m_server.store.sqlite import SqliteStore


def _own(store: SqliteStore, node: str) -> JobOwnership:
    return JobOwnership(node, store.ota_jobs, store.nodes, node_timeout_s=5.0)


async def _job(store: SqliteStore, job_id: str, node: str | None) -> JobRecord:
    record = JobRecord(endpoint=f"ep-{job_id}", package_sha256="ab" * 32, kind="firmware", id=job_id,
                       phase=JobPhase.DOWNLOADING, node_id=node)
    await store.ota_jobs.save(record, ("queued", "queued", "created"))
    return record


async def test_resume_own_and_unowned_jobs_only(store: SqliteStore) -> None:
    a, b = _own(store, "a"), _own(store, "b")
    mine, theirs, legacy = await _job(store, "1", "a"), await _job(store, "2", "b"), await _job(store, "3", None)
    assert await a.claim_for_resume(mine)
    assert not await a.claim_for_resume(theirs)
    assert await a.claim_for_resume(JobRecord(**{**legacy.__dict__}))  # a claims the unowned row first...
    assert not await b.claim_for_resume(legacy)  # ... so b does not resume it too
    assert (await store.ota_jobs.get("3")).node_id == "a"  # type: ignore[union-attr]


async def test_adopt_only_from_a_dead_node_or_one_that_lost_the_device(store: SqliteStore) -> None:
    now = time.time()
    await store.nodes.heartbeat(NodeRow("a", now, now, {}))
    await store.nodes.heartbeat(NodeRow("dead", now - 60, now - 60, {}))
    alive_job, dead_job = await _job(store, "1", "a"), await _job(store, "2", "dead")
    b = _own(store, "b")
    await store.execute(  # a still holds ep-1's registration
        "INSERT INTO registrations (endpoint, reg_id, host, port, lifetime, lwm2m_version, binding, queue_mode,"
        " root_path, content_formats, objects, instances, registered_at, updated_at, last_seen, node_id)"
        " VALUES ('ep-1', 'r1', '127.0.0.1', 1, 60, '1.1', 'U', 0, '/', '[]', '[]', '[]', 0, 0, 0, 'a')")
    assert not await b.adopt(JobRecord(**{**alive_job.__dict__}))
    assert (await store.ota_jobs.get("1")).node_id == "a"  # type: ignore[union-attr]
    await store.execute("UPDATE registrations SET node_id = 'b' WHERE endpoint = 'ep-1'")  # the device moved
    assert await b.adopt(alive_job) and alive_job.node_id == "b"
    stale = JobRecord(**{**dead_job.__dict__})
    assert await b.adopt(dead_job)
    assert not await _own(store, "c").adopt(stale)  # c read the row before b adopted it: c loses the race
    assert (await store.ota_jobs.get("2")).node_id == "b"  # type: ignore[union-attr]
