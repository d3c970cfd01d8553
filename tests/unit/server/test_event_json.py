"""An event is JSON-encoded once for all its SSE streams and the cluster relay (``Event.to_json``), and those
sinks send exactly the characters their own ``json.dumps`` calls produced before."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from typing import Any

import pytest

from lwm2m_server.api.events import format_sse
from lwm2m_server.api.values import to_jsonable
from lwm2m_server.cluster.events import EventRelay
from lwm2m_server.events import Event, EventBus
from lwm2m_server.protocol.model import ObjectLink
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.store.postgres.notify import PgNotifier


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
]


def _old_sse_payload(event: Event) -> str:  # api/events.py before the shared encoding
    return json.dumps(to_jsonable(event.to_dict()), separators=(",", ":"), allow_nan=False)


def _old_relay_text(event: Event) -> str:  # cluster/events.py before the shared encoding
    return json.dumps(to_jsonable(event.to_dict()), separators=(",", ":"), default=str)


def _relay(payload_limit: int = 7900) -> EventRelay:
    # the notifier is never contacted: only the relay's encoding runs here
    return EventRelay(EventBus(), PgNotifier("postgresql://127.0.0.1:1/unused"), "node-a",
                      payload_limit=payload_limit)


@pytest.mark.parametrize("event", EVENTS, ids=[f"{e.type}-{i}" for i, e in enumerate(EVENTS)])
async def test_sse_and_relay_bytes_are_unchanged(event: Event) -> None:
    expected_sse = f"event: {event.type}\ndata: {_old_sse_payload(event)}\n\n"
    relay = _relay()
    relayed = relay._encode(event)
    assert format_sse(event) == expected_sse and format_sse(event) == expected_sse  # a second stream: same frame
    assert relayed == _old_relay_text(event)
    assert relayed.encode() == _old_relay_text(event).encode()


async def test_one_encoding_shared_by_every_stream_and_the_relay() -> None:
    event = Event("notification", "dev-1", {"path": "/3/0/9", "values": {"/3/0/9": 87}}, 1.5)
    first = event.to_json()
    relay = _relay()
    assert relay._encode(event) is first  # the relay sends the cached string itself, not a new encoding
    assert event.to_json() is first
    assert format_sse(event) == f"event: notification\ndata: {first}\n\n"
    assert Event("notification", "dev-1", dict(event.data), 1.5) == event  # the cache is not part of equality


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
    assert fields["_json"].init is False and fields["_json"].compare is False
    assert "_json" not in event.to_dict() and "_json" not in repr(event)
