"""SqliteStore against a real SQLite file: batching, coalescing, read-your-writes, error isolation, reopen."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.registration import Registration
from lwm2m_server.store import SqliteStore, Store


def _reg(ep: str, reg_id: str = "", port: int = 5000) -> Registration:
    return Registration(
        endpoint=ep,
        reg_id=reg_id or f"id-{ep}",
        host="127.0.0.1",
        port=port,
        lifetime=60,
        lwm2m_version="1.1",
        binding="UQ",
        queue_mode=True,
        content_formats=frozenset({112, 11542}),
        objects={3: None, 32001: "1.0"},
        instances=frozenset({LwM2MPath.parse("/3/0"), LwM2MPath.parse("/32001/0")}),
    )


async def test_registration_roundtrip_survives_reopen(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    assert isinstance(store, Store)
    await store.open()
    reg = _reg("dev-1")
    await store.save_registration(reg)
    await store.close()

    again = SqliteStore(tmp_path / "s.db")
    await again.open()
    loaded = await again.load_registrations()
    await again.close()
    assert loaded == [reg]
    assert loaded[0].instances == frozenset({LwM2MPath(3, 0), LwM2MPath(32001, 0)})
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


async def test_storm_is_batched_and_coalesced(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", batch_max=256, batch_window_ms=20)
    await store.open()
    for i in range(1000):
        await store.save_registration(_reg(f"ep{i % 100}", reg_id=f"r{i}", port=i))
        await store.append_event("registered", f"ep{i % 100}", {"i": i})
    await store.flush()
    writer = store.writer
    assert writer.writes_committed == 2000
    assert writer.batches_committed <= 2000 // 256 + 2
    regs = {r.endpoint: r for r in await store.load_registrations()}
    assert len(regs) == 100
    assert regs["ep7"].port == 907  # the last write of a coalesced endpoint wins
    events = await store.events(endpoint="ep7", limit=3)
    assert [e["data"]["i"] for e in events] == [707, 807, 907]
    await store.close()


async def test_delete_and_profiles(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    await store.save_registration(_reg("a"))
    await store.save_registration(_reg("b"))
    await store.delete_registration("a")
    await store.save_profile("b", {"ram_total": 262144, "blob": b"\x01\x02"})
    assert [r.endpoint for r in await store.load_registrations()] == ["b"]
    assert await store.load_profile("b") == {"ram_total": 262144, "blob": "0102"}
    assert await store.load_profile("a") is None
    await store.close()


async def test_generic_execute_errors_are_isolated(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", batch_window_ms=30)
    await store.open()
    await store.ensure_schema("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    good = asyncio.ensure_future(store.execute("INSERT INTO jobs (id, name) VALUES (?, ?)", (1, "one")))
    bad = asyncio.ensure_future(store.execute("INSERT INTO jobs (id, name) VALUES (?, ?)", (2, None)))
    await store.save_registration(_reg("same-batch"))
    await good
    with pytest.raises(sqlite3.IntegrityError):
        await bad
    assert await store.fetchall("SELECT id, name FROM jobs") == [{"id": 1, "name": "one"}]
    assert [r.endpoint for r in await store.load_registrations()] == ["same-batch"]
    await store.execute("UPDATE jobs SET name = :n WHERE id = :i", {"n": "uno", "i": 1})
    assert await store.fetchall("SELECT name FROM jobs WHERE id = ?", (1,)) == [{"name": "uno"}]
    await store.close()
