"""Versioned migrations: a fresh store reaches the latest version; a data dir written by the code before
migrations existed (``data/legacy-acb51a5.sqlite3``, built by ``data/make_legacy.py`` at that commit) upgrades in
place and every repository reads its rows back; a store newer than the server is refused."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from lwm2m_server.ota.job_state import JobPhase
from lwm2m_server.rollouts.states import DeviceState
from lwm2m_server.store.sqlite import SqliteStore
from lwm2m_server.store.sqlite.migrations import LATEST, MIGRATIONS

LEGACY = Path(__file__).parent / "data" / "legacy-acb51a5.sqlite3"


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def test_fresh_store_is_at_the_latest_version(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.open()
    await store.close()
    assert LATEST == len(MIGRATIONS) >= 2
    assert _version(tmp_path / "s.sqlite3") == LATEST
    again = SqliteStore(tmp_path / "s.sqlite3")  # reopening applies nothing and changes nothing
    await again.open()
    assert again.schema_version == LATEST
    await again.close()


async def test_legacy_data_dir_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "tinymlaas.sqlite3"
    shutil.copyfile(LEGACY, path)
    assert _version(path) == 0
    store = SqliteStore(path)
    await store.open()
    try:
        assert store.schema_version == LATEST
        [reg] = await store.load_registrations()
        assert (reg.endpoint, reg.binding, reg.queue_mode, reg.content_formats) == ("legacy-ep", "UQ", True,
                                                                                 frozenset({0, 112}))
        assert await store.load_profile("legacy-ep") == {"ram_total": 262144, "cpu": "cortex-m4f"}
        assert [e["type"] for e in await store.events(endpoint="legacy-ep")] == ["registered"]
        [queued] = await store.queue.load()
        assert (queued.seq, queued.endpoint, queued.payload) == (7, "legacy-ep", b"")
        job = await store.ota_jobs.get("job1")
        assert job is not None and job.phase is JobPhase.DOWNLOADING
        assert [h["note"] for h in await store.ota_jobs.history("job1")] == ["created", "pull"]  # order kept
        [pkg] = await store.packages.all()
        assert (pkg.kind, pkg.name, pkg.size) == ("firmware", "fw", 15)
        [rollout] = await store.rollouts.list_rollouts()
        assert rollout.spec.name == "legacy"
        [device] = await store.rollouts.devices(rollout.id)
        assert (device.state, device.job_id, device.attempts) == (DeviceState.DELIVERING, "job1", 1)
        assert [a["action"] for a in await store.audit.entries(rollout_id=rollout.id)] == ["rollout.created"]
        assert [t.name for t in await store.tokens.all()] == ["legacy-admin"]
        assert [v["value"] for v in await store.send_values.query("legacy-ep")] == [87]
        # new writes work on the upgraded schema (the rebuilt history table keeps numbering after the old rows)
        await store.ota_jobs.save(job, ("downloading", "downloaded", "done"))
        assert [h["note"] for h in await store.ota_jobs.history("job1")] == ["created", "pull", "done"]
    finally:
        await store.close()
    assert _version(path) == LATEST


async def test_a_store_newer_than_the_server_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    store = SqliteStore(path)
    with pytest.raises(RuntimeError, match="newer than this server"):
        await store.open()


async def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite3"
    with sqlite3.connect(path) as conn:  # version 1 done, and a table in the way of version 2's rename
        conn.execute("CREATE TABLE ota_job_history_v2 (x INTEGER)")
        conn.execute("PRAGMA user_version = 1")
    store = SqliteStore(path)
    with pytest.raises(sqlite3.OperationalError):
        await store.open()
    assert _version(path) == 1


async def test_postgres_upgrades_a_version_1_database_in_place() -> None:
    import asyncpg

    from lwm2m_server.store.postgres import PostgresStore
    from lwm2m_server.store.postgres import migrations as pg
    from tests.support.postgres import drop_pg_database, make_pg_database

    dsn = await make_pg_database()
    try:
        conn = await asyncpg.connect(dsn)
        try:
            assert await pg.migrate(conn, pg.MIGRATIONS[:1]) == 1
            for ts, to, note in ((1.0, "queued", "created"), (2.0, "downloading", "pull")):
                await conn.execute("INSERT INTO ota_job_history (job_id, ts, from_phase, to_phase, attempt, note)"
                                   " VALUES ('j', $1, 'queued', $2, 1, $3)", ts, to, note)
        finally:
            await conn.close()
        store = PostgresStore(dsn)
        await store.open()
        try:
            assert store.schema_version == pg.LATEST == LATEST
            assert [h["note"] for h in await store.ota_jobs.history("j")] == ["created", "pull"]
        finally:
            await store.close()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", LATEST + 1)
        finally:
            await conn.close()
        with pytest.raises(RuntimeError, match="newer than this server"):
            await PostgresStore(dsn).open()
    finally:
        await drop_pg_database(dsn)


async def test_postgres_unreachable_database_is_a_clear_error() -> None:
    from lwm2m_server.store.postgres import PostgresStore
    from tests.support.postgres import ADMIN_DSN, make_pg_database

    await drop_if_made(await make_pg_database())  # skips when no server answers
    store = PostgresStore(ADMIN_DSN.rsplit("/", 1)[0] + "/tinymlaas_no_such_db")
    with pytest.raises(ConnectionError, match='cannot open the PostgreSQL store: database "tinymlaas_no_such_db"'):
        await store.open()


async def drop_if_made(dsn: str) -> None:
    from tests.support.postgres import drop_pg_database

    await drop_pg_database(dsn)
