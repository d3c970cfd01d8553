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
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.jsonvalues import to_jsonable

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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "endpoint": self.endpoint, "data": self.data, "ts": self.ts}
        if self.node is not None:
            out["node"] = self.node
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON (values in the API's encoding), encoded on first use and kept: every SSE
        stream and the cluster relay send these same characters. ``data`` must not change once published."""
        text = self._json
        if text is None:
            text = json.dumps(to_jsonable(self.to_dict()), separators=(",", ":"), allow_nan=False)
            object.__setattr__(self, "_json", text)
        return text


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
