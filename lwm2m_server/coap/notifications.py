"""What every server-side observation hands its consumer: the latest value and the notifications as an async
iterator over a bounded queue that drops the oldest for a slow consumer (observe is lossy by nature, RFC 7641:
only the latest state matters). Single-path handles (:mod:`lwm2m_server.coap.observation`) and composite
observations (:mod:`lwm2m_server.coap.composite_observation`) are both one of these."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lwm2m_server.protocol.model import Content


class NotificationStream:
    """The latest ``value``, a count of notifications, and an iterator that ends once the stream is closed."""

    def __init__(self, maxsize: int = 64) -> None:
        self.value: Content = {}
        self.notifications = 0
        self.cancelled = False
        self.error: BaseException | None = None
        self._queue: asyncio.Queue[Content | None] = asyncio.Queue(maxsize)

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
        self._put(None)
        return True

    def _put(self, item: Content | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(item)

    def __aiter__(self) -> AsyncIterator[Content]:
        return self

    async def __anext__(self) -> Content:
        if self.cancelled and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def next(self, timeout: float) -> Content:
        """The next notification within ``timeout`` s (``TimeoutError``), ``StopAsyncIteration`` once ended."""
        return await asyncio.wait_for(self.__anext__(), timeout)
