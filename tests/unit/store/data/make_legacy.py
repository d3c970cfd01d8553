# ruff: noqa  (runs only against the old commit named below, whose modules are gone now)
"""Builds ``legacy-acb51a5.sqlite3``: a data dir's store as written by the code of commit acb51a5 (before the
versioned migrations). Kept for the record; it only runs against that commit's code:

    git worktree add /tmp/old acb51a5 && PYTHONPATH=/tmp/old python tests/unit/store/data/make_legacy.py OUT
"""

import asyncio
import sys
from pathlib import Path

from lwm2m_server.auth.tokens import TokenService
from lwm2m_server.ota import packages, record
from lwm2m_server.ota.job_state import JobPhase
from lwm2m_server.queue import SCHEMA as QUEUE_SCHEMA
from lwm2m_server.registration import Registration
from lwm2m_server.rollouts.model import RolloutSpec
from lwm2m_server.rollouts.repository import RolloutRepository
from lwm2m_server.rollouts.states import DeviceState
from lwm2m_server.store.send_values import SendValueStore, SentValue
from lwm2m_server.store.sqlite import SqliteStore


async def main(out: Path) -> None:
    store = SqliteStore(out)
    await store.open()
    reg = Registration("legacy-ep", "r1", "127.0.0.1", 56830, 300, "1.1", "UQ", True,
                       content_formats=frozenset({0, 112}), registered_at=1_700_000_000.0)
    await store.save_registration(reg)
    await store.save_profile("legacy-ep", {"ram_total": 262144, "cpu": "cortex-m4f"})
    await store.append_event("registered", "legacy-ep", {"lifetime": 300}, ts=1_700_000_001.0)
    await store.ensure_schema(QUEUE_SCHEMA)
    await store.execute("INSERT INTO queued_requests (seq, endpoint, spec, payload, timeout, created_at)"
                        " VALUES (?,?,?,?,?,?)", (7, "legacy-ep", '{"method":"GET","path":"/3/0/0"}', b"", 5.0, 1.0))
    await store.ensure_schema(record.SCHEMA)
    job = record.JobRecord(endpoint="legacy-ep", package_sha256="ab" * 32, kind="firmware", id="job1",
                           phase=JobPhase.DOWNLOADING, created_at=1.0, updated_at=2.0)
    await store.execute(record.UPSERT, job.to_row())
    await store.execute(record.HISTORY, ("job1", 1.0, "queued", "queued", 1, "created"))
    await store.execute(record.HISTORY, ("job1", 2.0, "queued", "downloading", 1, "pull"))
    pkgs = packages.PackageStore(out.parent, store)
    await pkgs.open()
    await pkgs.add(b"legacy firmware", "firmware", name="fw", version="1")
    repo = RolloutRepository(store)
    await repo.open()
    row = await repo.create(RolloutSpec(model="kws", name="legacy"))
    await repo.add_devices(row.id, [(0, "legacy-ep", "class-a")])
    await repo.set_device(row.id, "legacy-ep", DeviceState.DELIVERING, job_id="job1", attempt=True)
    await repo.audit("rollout.created", rollout_id=row.id, actor="legacy")
    tokens = TokenService(store)
    await tokens.open()
    await tokens.create("admin", "legacy-admin")
    sv = SendValueStore(store)
    await sv.start()
    await sv.add("legacy-ep", [SentValue("/3/0/9", 1.5, 87)], received_at=3.0)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
