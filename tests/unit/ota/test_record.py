"""Job rows survive a round trip through a real SQLite store (what resume_all reads after a restart)."""

from __future__ import annotations

from pathlib import Path

from lwm2m_server.ota.job_state import Cause, JobPhase
from lwm2m_server.ota.object5 import values_from_notification
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.store.sqlite import SqliteStore


async def test_record_round_trip_and_upsert(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3")
    await store.open()
    try:
        rec = JobRecord(endpoint="dev-1", package_sha256="ab" * 32, kind="model", requested_method="pull",
                        options={"timeout_s": 12.5})  # fmt: skip
        await store.ota_jobs.save(rec, ("queued", "queued", "created"))
        rec.phase, rec.attempt, rec.cause, rec.result = JobPhase.FAILED, 2, Cause.NOT_FITTING, 3
        rec.progress.update(fw_state=0, fw_result=3, bytes=100, total=200)
        await store.ota_jobs.save(rec, ("updating", "failed", "out of RAM"))
        assert await store.ota_jobs.for_endpoint("dev-1") == [rec]
        back = await store.ota_jobs.get(rec.id)
        assert back == rec
        assert [h["note"] for h in await store.ota_jobs.history(rec.id)] == ["created", "out of RAM"]
        assert await store.ota_jobs.in_phases(["failed"]) == [rec]
        assert await store.ota_jobs.in_phases(["queued"]) == []
        assert await store.ota_jobs.count_retried() == 1
        assert back.to_json()["summary"] == "not fitting (out of RAM)"
        assert back.options == {"timeout_s": 12.5}
    finally:
        await store.close()


def test_notification_values_pick_state_and_result() -> None:
    assert values_from_notification({"path": "/5/0/3", "values": {"/5/0/3": 2}}) == (2, None)
    assert values_from_notification({"values": {"/5/0/3": 0, "/5/0/5": 1, "/5/0/1": "x"}}) == (0, 1)
    assert values_from_notification({"values": {"/3/0/9": 80}}) == (None, None)
    assert values_from_notification({"values": {"/5/0/3": True}}) == (None, None)
