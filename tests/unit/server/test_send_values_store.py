"""Send values on a real SQLite file: stored with their times, queried by path prefix and time window, pruned
by arrival time and row count like the event log."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from lwm2m_server.store.repositories import SentValue
from lwm2m_server.store.retention import DAY_S, RetentionPolicy
from lwm2m_server.store.sqlite import SqliteStore


async def test_add_query_and_prune(tmp_path: Path) -> None:
    path = tmp_path / "send.sqlite3"
    store = SqliteStore(path, retention=RetentionPolicy(max_age_s=7 * DAY_S, max_rows=1000, interval_s=3600))
    await store.open()
    values = store.send_values
    now = time.time()
    try:
        old = [SentValue("/3/0/1", 1_600_000_000.0 + i, i) for i in range(5)]
        await values.add("dev", old, received_at=now - 30 * DAY_S)
        rows = [SentValue("/3/0/1", 1_700_000_000.0, "a"), SentValue("/3/0/10", 1_700_000_001.0, {"hex": "00ff"}),
                SentValue("/3/0/1", 1_700_000_002.0, "b"), SentValue("/5/0/3", 1_700_000_003.0, 2)]  # fmt: skip
        await values.add("dev", rows, received_at=now)
        await values.add("other", [SentValue("/3/0/1", 1_700_000_000.0, "x")], received_at=now)
        with sqlite3.connect(path) as conn:  # committed, as the API answers after the Send's 2.04
            assert conn.execute("SELECT COUNT(*) FROM send_values").fetchone()[0] == 10

        got = await values.query("dev", path="/3/0/1", since=1_700_000_000)
        assert [(r["path"], r["value"]) for r in got] == [("/3/0/1", "a"), ("/3/0/1", "b")]  # not /3/0/10
        assert [r["path"] for r in await values.query("dev", path="/3/0", since=1_700_000_000)] == [
            "/3/0/1", "/3/0/10", "/3/0/1"]  # fmt: skip
        assert (await values.query("dev", path="/3/0/10"))[0]["value"] == {"hex": "00ff"}
        window = await values.query("dev", since=1_700_000_001, until=1_700_000_002)
        assert [r["ts"] for r in window] == [1_700_000_001.0, 1_700_000_002.0]
        assert [r["value"] for r in await values.query("dev", limit=2)] == ["b", 2]  # the newest two, oldest first

        await values.prune()  # the timer's first run may already have done it: count both
        assert values.pruned == 5  # the rows that arrived 30 days ago, whatever their own (historical) times
        assert [r["value"] for r in await values.query("dev", path="/3/0/1")] == ["a", "b"]
    finally:
        await store.close()
