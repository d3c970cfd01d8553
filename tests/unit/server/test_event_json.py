"""An event is JSON-encoded once for all its SSE streams and the cluster relay (``Event.to_json``), and those
sinks send exactly the characters their own ``json.dumps`` calls produced before."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.api.events import format_sse
from lwm2m_server.api.values import to_jsonable
from lwm2m_server.cluster.events import EventRelay
from lwm2m_server.events import Event, EventBus
from lwm2m_server.protocol.model import ObjectLink
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.store.postgres.notify import PgNotifier
from lwm2m_server.store.sql.soft_state import dumps as store_dumps
from lwm2m_server.store.sqlite import SqliteStore


class Phase(enum.Enum):
    DONE = "done"


@dataclasses.dataclass
class Step:
    blocks: int
    path: LwM2MPath


EVENTS = [
    Event("notification", "dev-1", {"path": "/3/0/9", "values": {"/3/0/9": 87, "/6/0/4": {"hex": "0102"}}}, 1.5),
    Event("notification", "dev-2", {"path": "/", "paths": ["/3/0/9"], "values": {"/3/0/7": float("nan")}}, 2.0),
    Event("ota.progress", "dévice-ü", {"job": 7, "bytes": 1024, "raw": b"\x00\xff", "link": ObjectLink(3, 0)}),
    Event("inventory", None, {"tags": {"b", "a"}, "at": dt.datetime(2026, 1, 2, 3, 4, 5), "phase": Phase.DONE,
                              "step": Step(3, LwM2MPath(5, 0, 1)), "inf": float("inf"), "n": None, 1: (1, 2)}),
    Event("registered", "ep", {"lifetime": 300}, 1_700_000_000.25, node="node-b"),
    Event("updated", "ep", {}, 3),
    Event("send", "ep", {"values": [{"/3/0/9": 1}, [1.0, -0.0, 1e300, True, None, "é\u2028"]], "t": (1, 2)}),
    Event("nested", "ep", {"k": {"also": 1}}, float("nan")),
    Event("odd", "\ud800\x7f\n\"", {"\ud800": "\x00"}, float("-inf"), node="n\u00e9"),
]


def _nested(levels: int) -> dict[str, Any]:
    data: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        data = {"d": data}
    return data


DEEP = [Event("deep", "ep", _nested(n)) for n in (30, 31, 32, 33, 40)]
PLAIN = {0, 4, 5, 7, 8}  # indexes of EVENTS whose data is plain JSON


def _old_sse_payload(event: Event) -> str:  # api/events.py before the shared encoding
    return json.dumps(to_jsonable(event.to_dict()), separators=(",", ":"), allow_nan=False)


def _old_relay_text(event: Event) -> str:  # cluster/events.py before the shared encoding
    return json.dumps(to_jsonable(event.to_dict()), separators=(",", ":"), default=str)


def _relay(payload_limit: int = 7900) -> EventRelay:
    # the notifier is never contacted: only the relay's encoding runs here
    return EventRelay(EventBus(), PgNotifier("postgresql://127.0.0.1:1/unused"), "node-a",
                      payload_limit=payload_limit)


@pytest.mark.parametrize("event", EVENTS + DEEP, ids=[f"{e.type}-{i}" for i, e in enumerate(EVENTS + DEEP)])
async def test_sse_and_relay_bytes_are_unchanged(event: Event) -> None:
    expected_sse = f"event: {event.type}\ndata: {_old_sse_payload(event)}\n\n"
    relay = _relay()
    relayed = relay._encode(event)
    assert format_sse(event) == expected_sse and format_sse(event) == expected_sse  # a second stream: same frame
    assert relayed == _old_relay_text(event)
    assert relayed.encode() == _old_relay_text(event).encode()


def _fresh(event: Event) -> Event:
    return Event(event.type, event.endpoint, event.data, event.ts, event.node)


@pytest.mark.parametrize("event", EVENTS + DEEP, ids=[f"{e.type}-{i}" for i, e in enumerate(EVENTS + DEEP)])
def test_frames_first_then_the_event_log(event: Event) -> None:
    """Frames encoded first (an SSE stream before the log): the log reuses the text only for plain data, and that
    text is exactly what the store's own dumps gives."""
    event = _fresh(event)
    assert event.shared_data_json() is None  # nothing encoded yet: never encodes by itself
    frame = event.to_json()
    shared = event.shared_data_json()
    assert shared is None or (shared == store_dumps(event.data) and f',"data":{shared},' in frame)


@pytest.mark.parametrize("event", EVENTS + DEEP, ids=[f"{e.type}-{i}" for i, e in enumerate(EVENTS + DEEP)])
async def test_event_log_first_then_the_frames(event: Event, tmp_path: Path) -> None:
    """The server's order (the log's sink runs before any stream or the relay): the frames reuse the log's text
    for plain data and encode their own otherwise; either way the frame is the old encoder's, byte for byte."""
    event = _fresh(event)
    store = SqliteStore(tmp_path / "s.sqlite3", batch_window_ms=1)
    await store.open()
    try:
        # the row's other columns as SQLite can hold them (no NaN ts, no lone surrogate): only data is compared
        written = store.append_event_nowait(event.type, "ep", event.data, 1.0, encoded=event.shared_data_json())
        assert written == store_dumps(event.data)
        event.offer_data_json(written)
        assert event.to_json() == _old_sse_payload(event) == _old_relay_text(event)
        if event.shared_data_json() is not None:
            assert event._data_json is written  # the log's string itself: data was encoded once
        await store.flush()
        with sqlite3.connect(tmp_path / "s.sqlite3") as conn:
            assert conn.execute("SELECT data FROM events").fetchall() == [(written,)]
    finally:
        await store.close()
    assert store.append_event_nowait("late", None, {}) is None  # closed: dropped, nothing written


def test_which_data_is_plain() -> None:
    def plain(event: Event) -> bool:
        event = _fresh(event)
        event.to_json()
        return event.shared_data_json() is not None

    assert {i for i, e in enumerate(EVENTS) if plain(e)} == PLAIN
    # to_jsonable writes repr() below 32 levels (counted from to_dict()): such data is not plain
    assert [plain(e) for e in DEEP] == [True, True, False, False, False]


async def test_one_encoding_shared_by_every_stream_and_the_relay() -> None:
    event = Event("notification", "dev-1", {"path": "/3/0/9", "values": {"/3/0/9": 87}}, 1.5)
    first = event.to_json()
    relay = _relay()
    assert relay._encode(event) is first  # the relay sends the cached string itself, not a new encoding
    assert event.to_json() is first
    assert format_sse(event) == f"event: notification\ndata: {first}\n\n"
    assert Event("notification", "dev-1", dict(event.data), 1.5) == event  # the cache is not part of equality
    shared = event.shared_data_json()
    assert shared is not None and shared is event.shared_data_json() and shared in first


async def test_truncation_counts_utf8_bytes() -> None:
    event = Event("inventory", "ép", {"name": "ü" * 300})
    text = _old_relay_text(event)
    assert len(text.encode()) > 600  # escaped as \u00fc: six bytes each
    relay = _relay(payload_limit=600)
    small = json.loads(relay._encode(event))
    assert small["data"] == {"truncated": True, "bytes": len(text.encode())} and relay.stats.truncated == 1
    assert small["endpoint"] == "ép" and small["type"] == "inventory"


def test_event_data_is_not_copied_into_the_cache_fields() -> None:
    event = Event("updated", "ep", {"a": 1})
    fields: dict[str, Any] = {f.name: f for f in dataclasses.fields(event)}
    for name in ("_json", "_data_json", "_plain"):
        assert fields[name].init is False and fields[name].compare is False
        assert name not in event.to_dict() and name not in repr(event)
