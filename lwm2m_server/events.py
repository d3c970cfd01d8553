"""In-process event bus: every surface (REST SSE, MQTT bridge, OTA jobs, rollouts) listens here.

Publishing never blocks and never awaits: each subscriber owns a bounded queue, and a slow subscriber
loses its *oldest* events (counted in ``dropped``) rather than slowing the CoAP path down. Synchronous
sinks (``add_sink``) see every event, in order, without loss; the server uses one to append to the
persistent event log.

Several nodes: events relayed from another node (``lwm2m_server.cluster.events``) carry that node's id in
``node`` and reach only subscriptions made with ``remote=True`` (the SSE stream, the MQTT bridge), never the
sinks or this node's own services (an OTA job here must not act on a registration at another node).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.jsonvalues import MAX_DEPTH, to_jsonable

log = get_logger(__name__)

EVENT_TYPES = ("registered", "updated", "deregistered", "expired", "notification", "send", "sleeping", "awake")


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    endpoint: str | None
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    node: str | None = None
    """The node the event happened on, when that is another node (a relayed event); None = here."""
    _json: str | None = field(default=None, init=False, repr=False, compare=False)
    _data_json: str | None = field(default=None, init=False, repr=False, compare=False)
    """``data`` as JSON: the frames' (``_plain`` known) or the event log's text, offered (``_plain`` None)."""
    _plain: bool | None = field(default=None, init=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "endpoint": self.endpoint, "data": self.data, "ts": self.ts}
        if self.node is not None:
            out["node"] = self.node
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON (values in the API's encoding), encoded on first use and kept: every SSE
        stream and the cluster relay send these same characters. ``data`` must not change once published.

        The same characters as ``json.dumps(to_jsonable(self.to_dict()), separators=(",", ":"))``, put together
        from the parts so that ``data``'s encoding can be shared with the event log (:meth:`offer_data_json`)."""
        text = self._json
        if text is None:
            text = (f'{{"type":{_scalar(self.type)},"endpoint":{_scalar(self.endpoint)},'
                    f'"data":{self._wire_data_json()},"ts":{_scalar(self.ts)}')
            text += f',"node":{_scalar(self.node)}}}' if self.node is not None else "}"
            object.__setattr__(self, "_json", text)
        return text

    def shared_data_json(self) -> str | None:
        """``data`` as compact JSON if the frames (:meth:`to_json`) encoded it already and it is plain JSON (dicts
        with str keys, lists, str, int, bool, None, finite floats): every encoder here, the event log's too, gives
        these characters for plain data. None otherwise (never encodes: the caller encodes its own way)."""
        return self._data_json if self._plain is True else None

    def offer_data_json(self, text: str) -> None:
        """The event log's encoding of ``data`` (``json.dumps(data, separators=(",", ":"), default=...)``): the
        frames reuse it instead of encoding ``data`` again if ``data`` turns out plain JSON."""
        if self._data_json is None:
            object.__setattr__(self, "_data_json", text)

    def _wire_data_json(self) -> str:
        if self._plain is None:
            plain = _is_plain(self.data, 1)
            if not plain or self._data_json is None:  # an offered text is only the frames' for plain data
                # depth 1: data sits one level inside to_dict(), where to_jsonable's depth limit counts from
                value = self.data if plain else to_jsonable(self.data, 1)
                object.__setattr__(self, "_data_json", json.dumps(value, separators=(",", ":"), allow_nan=False))
            object.__setattr__(self, "_plain", plain)
        text = self._data_json
        assert text is not None
        return text


def _scalar(value: Any) -> str:
    """One field of the frame, as ``json.dumps(to_jsonable(value, 1))`` writes it, without its overhead for the
    usual types (json.dumps itself uses these two for str and finite float)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if value is None:
        return "null"
    return json.dumps(to_jsonable(value, 1), separators=(",", ":"), allow_nan=False)


def _is_plain(obj: Any, depth: int) -> bool:
    """Whether ``to_jsonable(obj, depth)`` is ``obj`` itself in all but container identity, and json.dumps of it
    never calls a ``default`` (exact types only: a subclass or anything else is not plain)."""
    if depth > MAX_DEPTH:  # to_jsonable writes repr() there
        return False
    kind = type(obj)
    if kind is str or kind is int or kind is bool or obj is None:
        return True
    if kind is float:
        return math.isfinite(obj)
    if kind is dict:
        return all(type(k) is str and _is_plain(v, depth + 1) for k, v in obj.items())
    if kind is list:
        return all(_is_plain(v, depth + 1) for v in obj)
    return False


class Subscription:
    """A bounded queue of events; iterate it with ``async for`` and ``close()`` it when done."""

    def __init__(self, bus: EventBus, maxsize: int, types: frozenset[str] | None, endpoint: str | None,
                 remote: bool = False) -> None:
        self._bus = bus
        self.remote = remote
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self._types = types
        self._endpoint = endpoint
        self.dropped = 0
        self.closed = False

    def _offer(self, event: Event) -> None:
        if self.closed:
            return
        if self._types is not None and event.type not in self._types:
            return
        if self._endpoint is not None and event.endpoint != self._endpoint:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self, timeout: float | None = None) -> Event:
        """Next event; raises ``asyncio.TimeoutError`` after ``timeout`` s, ``StopAsyncIteration`` once closed."""
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is None:
            raise StopAsyncIteration
        return item

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._subscribers.discard(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._sinks: list[Callable[[Event], None]] = []

    def subscribe(
        self,
        *,
        types: set[str] | frozenset[str] | None = None,
        endpoint: str | None = None,
        maxsize: int | None = None,
        remote: bool = False,
    ) -> Subscription:
        """Subscribe from now on, optionally filtered by event type(s) and endpoint; ``remote``: also the events
        relayed from other nodes."""
        sub = Subscription(self, maxsize or self.queue_size, frozenset(types) if types else None, endpoint, remote)
        self._subscribers.add(sub)
        return sub

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """A synchronous callback for every event (must be fast and must not raise)."""
        self._sinks.append(sink)

    def publish(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:
                log.exception("event_sink_failed", type=event.type)
        for sub in list(self._subscribers):
            sub._offer(event)

    def publish_remote(self, event: Event) -> None:
        """An event relayed from another node: only to ``remote`` subscriptions (no sinks, no local services)."""
        for sub in list(self._subscribers):
            if sub.remote:
                sub._offer(event)

    def emit(self, type: str, endpoint: str | None = None, **data: Any) -> Event:
        event = Event(type, endpoint, data)
        self.publish(event)
        return event

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
