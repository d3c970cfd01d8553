"""Event-log retention on a real SQLite file: by age, by row count, on the store's timer, and from the config."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from lwm2m_server.config import load_settings
from lwm2m_server.server import LwM2MServer
from lwm2m_server.store.retention import DAY_S, RetentionPolicy
from lwm2m_server.store.sqlite import SqliteStore


def _rows(path: Path) -> list[tuple[float, str]]:
    """Read the file with a separate connection: what is committed, not what the store caches."""
    with sqlite3.connect(path) as conn:
        return [(float(ts), str(ep)) for ts, ep in conn.execute("SELECT ts, endpoint FROM events ORDER BY id")]


async def test_prune_by_age_and_by_row_count(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    store = SqliteStore(path)
    await store.open()
    now = time.time()
    try:
        for i in range(30):
            store.append_event_nowait("notification", f"old-{i}", {"i": i}, now - 10 * DAY_S + i)
        for i in range(40):
            store.append_event_nowait("notification", f"new-{i}", {"i": i}, now - 60 + i)
        await store.flush()

        assert await store.prune_events(RetentionPolicy(max_age_s=7 * DAY_S, max_rows=0), now=now) == 30
        kept = _rows(path)
        assert [ep for _, ep in kept] == [f"new-{i}" for i in range(40)]

        assert await store.prune_events(RetentionPolicy(max_age_s=0, max_rows=25), now=now) == 15
        assert [ep for _, ep in _rows(path)] == [f"new-{i}" for i in range(15, 40)]
        assert await store.prune_events(RetentionPolicy(max_age_s=7 * DAY_S, max_rows=25), now=now) == 0

        # everything old: nothing recent to anchor on, all of it goes
        assert await store.prune_events(RetentionPolicy(max_age_s=1, max_rows=0), now=now + 3600) == 25
        assert _rows(path) == []
        store.append_event_nowait("registered", "after", {})
        assert [e["endpoint"] for e in await store.events()] == ["after"]  # ids keep growing after a prune
    finally:
        await store.close()


async def test_store_prunes_on_its_timer_while_events_arrive(tmp_path: Path) -> None:
    path = tmp_path / "timer.sqlite3"
    store = SqliteStore(path, retention=RetentionPolicy(max_age_s=DAY_S, max_rows=100, interval_s=0.05))
    await store.open()
    try:
        now = time.time()
        for i in range(50):
            store.append_event_nowait("notification", "stale", {"i": i}, now - 2 * DAY_S)
        for i in range(300):
            store.append_event_nowait("notification", "live", {"i": i})
        await store.flush()
        deadline = time.monotonic() + 5.0
        while len(_rows(path)) > 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        rows = _rows(path)
        assert len(rows) == 100 and {ep for _, ep in rows} == {"live"}
        assert [e["data"]["i"] for e in await store.events(limit=1)] == [299]  # the newest are kept
    finally:
        await store.close()


async def test_server_store_gets_the_retention_from_the_config(tmp_path: Path) -> None:
    defaults = load_settings(environ={})
    assert (defaults.store.event_retention_days, defaults.store.event_max_rows) == (7.0, 1_000_000)
    settings = load_settings(
        environ={"TINYMLAAS_STORE__EVENT_MAX_ROWS": "10"},
        overrides={"server": {"data_dir": str(tmp_path), "coap_host": "127.0.0.1", "coap_port": 0},
                   "store": {"event_retention_days": 0.5, "event_prune_interval_s": 0.05}},
    )
    server = LwM2MServer(settings)
    assert isinstance(server.store, SqliteStore)
    assert server.store.retention == RetentionPolicy(0.5 * DAY_S, 10, 0.05)
    await server.start()
    try:
        for i in range(25):
            server.events.emit("test", f"ep-{i}")  # logged through the server's event sink
        await server.store.flush()
        deadline = time.monotonic() + 5.0
        while len(_rows(settings.store_path)) > 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [ep for _, ep in _rows(settings.store_path)] == [f"ep-{i}" for i in range(15, 25)]
    finally:
        await server.stop()
