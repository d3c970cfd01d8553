"""What every server-side observation hands its consumer: the latest value and the notifications as an async
iterator over a bounded queue that drops the oldest for a slow consumer (observe is lossy by nature, RFC 7641:
only the latest state matters). Single-path handles (:mod:`lwm2m_server.coap.observation`) and composite
observations (:mod:`lwm2m_server.coap.composite_observation`) are both one of these."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lwm2m_server.protocol.model import Content


class NotificationStream:
    """The latest ``value``, a count of notifications, and an iterator that ends once the stream is closed.

    ``buffered=False`` is for a consumer that follows ``value``, a callback or the events and never iterates (the
    inventory's handles): nothing is queued until the first iteration, which then sees only what comes later.
    Otherwise up to ``maxsize`` notifications wait for the iterator from the start. The queue is made on first
    use: a server with 100k devices holds several handles each, most of them never notified or iterated."""

    def __init__(self, maxsize: int = 64, *, buffered: bool = True) -> None:
        self.value: Content = {}
        self.notifications = 0
        self.cancelled = False
        self.error: BaseException | None = None
        self._maxsize = maxsize
        self._buffered = buffered
        self._queue: asyncio.Queue[Content | None] | None = None

    def _enqueue(self, content: Content) -> None:
        self.value = content
        self.notifications += 1
        self._put(content)

    def _close(self, error: BaseException | None) -> bool:
        """End the iterator (after what is queued); False when it was already closed."""
        if self.cancelled:
            return False
        self.cancelled = True
        self.error = error
        if self._queue is not None:
            self._put(None)  # wake an iterator waiting on the queue
        return True

    def _put(self, item: Content | None) -> None:
        if not self._buffered:
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = asyncio.Queue(self._maxsize)
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(item)

    @property
    def queued(self) -> int:
        """Notifications waiting for the iterator."""
        return 0 if self._queue is None else self._queue.qsize()

    def __aiter__(self) -> AsyncIterator[Content]:
        return self

    async def __anext__(self) -> Content:
        queue = self._queue
        if self.cancelled and (queue is None or queue.empty()):
            raise StopAsyncIteration
        if queue is None:
            self._buffered = True
            queue = self._queue = asyncio.Queue(self._maxsize)
        item = await queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def next(self, timeout: float) -> Content:
        """The next notification within ``timeout`` s (``TimeoutError``), ``StopAsyncIteration`` once ended."""
        return await asyncio.wait_for(self.__anext__(), timeout)
