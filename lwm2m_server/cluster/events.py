"""Events across nodes: every node's SSE stream and MQTT bridge see the events of all nodes.

Each local event (its JSON form, as SSE sends it) is published on one cluster channel of the store's notifier
(PostgreSQL LISTEN/NOTIFY); a node re-emits what other nodes sent into its own bus marked with their node id
(:meth:`EventBus.publish_remote`: remote subscriptions only). A relayed event is never published again, so
there are no loops, and a node ignores its own messages.

Cost: a registration storm makes one event per device, so events are batched: collected for ``batch_ms`` and
packed, several per NOTIFY, up to the notifier's payload limit. One event whose JSON alone is over the limit is
sent with its ``data`` replaced by ``{"truncated": true, "bytes": n}`` (counted in ``truncated``, logged).
The buffer is bounded: past ``buffer`` waiting events the oldest are dropped (``dropped``). Delivery is
at-most-once, like LISTEN/NOTIFY itself: a node that is down misses what happened meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from lwm2m_server.api.values import to_jsonable
from lwm2m_server.events import Event, EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.store.repositories import Notifier

log = get_logger(__name__)

CHANNEL = "tinymlaas_cluster_events"
PAYLOAD_LIMIT = 7900
"""Bytes per NOTIFY payload (PostgreSQL refuses 8000 and more)."""


@dataclass
class RelayStats:
    events_sent: int = 0
    notifies_sent: int = 0
    events_received: int = 0
    truncated: int = 0
    dropped: int = 0
    send_failures: int = 0


class EventRelay:
    def __init__(self, bus: EventBus, notifier: Notifier, node_id: str, *, batch_ms: float = 50.0,
                 buffer: int = 10_000, payload_limit: int = PAYLOAD_LIMIT) -> None:
        self._bus = bus
        self._notifier = notifier
        self.node_id = node_id
        self.batch_s = batch_ms / 1000.0
        self.buffer = buffer
        self.payload_limit = payload_limit
        self.stats = RelayStats()
        self._pending: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        head = json.dumps({"node": node_id, "events": []}, separators=(",", ":"))
        self._head, self._tail = head[:-2], "]}"

    async def start(self) -> None:
        await self._notifier.listen(CHANNEL, self._on_message)
        self._running = True
        self._bus.add_sink(self._on_local)
        self._task = asyncio.create_task(self._run(), name="cluster-event-relay")
        log.info("cluster_event_relay_started", node_id=self.node_id, batch_ms=self.batch_s * 1000)

    async def stop(self) -> None:
        self._running = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._flush()  # what was waiting still goes out (best effort)
        await self._notifier.close()
        log.info("cluster_event_relay_stopped", **asdict(self.stats))

    # ---- out -------------------------------------------------------------------------------------
    def _on_local(self, event: Event) -> None:
        """Bus sink: every local event, in order (relayed ones never reach sinks)."""
        if not self._running or event.node is not None:
            return
        if len(self._pending) >= self.buffer:
            self._pending.popleft()
            self.stats.dropped += 1
        self._pending.append(event)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.batch_s)  # let a burst gather into few notifications
            self._wake.clear()
            try:
                await self._flush()
            except Exception as exc:  # the store connection dropped: these events are lost, the relay goes on
                log.warning("cluster_event_relay_send_failed", error=repr(exc))

    async def _flush(self) -> None:
        while self._pending:
            # a few hundred at a time: encoding stays a short step of the event loop
            batch = [self._encode(self._pending.popleft()) for _ in range(min(len(self._pending), 200))]
            for payload, count in self._pack(batch):
                try:
                    await self._notifier.notify(CHANNEL, payload)
                except Exception:
                    self.stats.send_failures += count
                    raise
                self.stats.notifies_sent += 1
                self.stats.events_sent += count

    def _encode(self, event: Event) -> str:
        text = event.to_json()  # the same characters the SSE streams send, encoded once
        room = self.payload_limit - len(self._head) - len(self._tail)
        size = len(text)  # json.dumps escapes non-ASCII: one byte per character
        if size <= room:
            return text
        self.stats.truncated += 1
        log.warning("cluster_event_truncated", type=event.type, endpoint=event.endpoint, bytes=size,
                    limit=room, truncated_total=self.stats.truncated)
        small = {**event.to_dict(), "data": {"truncated": True, "bytes": size}}
        return json.dumps(to_jsonable(small), separators=(",", ":"), default=str)

    def _pack(self, encoded: list[str]) -> list[tuple[str, int]]:
        """Events into as few payloads as fit the limit: (payload, number of events)."""
        out: list[tuple[str, int]] = []
        part: list[str] = []
        size = len(self._head) + len(self._tail)
        for text in encoded:
            n = len(text.encode()) + (1 if part else 0)
            if part and size + n > self.payload_limit:
                out.append((self._head + ",".join(part) + self._tail, len(part)))
                part, size, n = [], len(self._head) + len(self._tail), n - 1
            part.append(text)
            size += n
        if part:
            out.append((self._head + ",".join(part) + self._tail, len(part)))
        return out

    # ---- in --------------------------------------------------------------------------------------
    def _on_message(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
            origin = str(msg["node"])
            items: list[dict[str, Any]] = list(msg["events"])
        except (ValueError, KeyError, TypeError):
            log.warning("cluster_bad_event_message", size=len(payload))
            return
        if origin == self.node_id:
            return  # our own notification, back from the channel
        for item in items:
            try:
                event = Event(str(item["type"]), item.get("endpoint"), dict(item.get("data") or {}),
                              float(item["ts"]), node=origin)
            except (KeyError, TypeError, ValueError):
                log.warning("cluster_bad_event", origin=origin)
                continue
            self.stats.events_received += 1
            self._bus.publish_remote(event)
