"""One Observe-Composite (LwM2M 1.1: FETCH ``/`` with Observe, the body naming several paths): its paths,
the latest root content, and notifications as an async iterator with a bounded queue (oldest dropped)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath


class CompositeObservation:
    def __init__(
        self,
        endpoint: str,
        paths: tuple[LwM2MPath, ...],
        reg_id: str,
        address: tuple[str, int],
        content_format: int,
        value: Content,
        *,
        owner: str | None = None,
        maxsize: int = 64,
    ) -> None:
        self.endpoint = endpoint
        self.paths = paths
        self.reg_id = reg_id
        self.address = address
        self.content_format = content_format
        self.value = value
        self.owner = owner
        self.notifications = 0
        self.cancelled = False
        self.error: BaseException | None = None
        self.aiocoap_obs: Any = None
        self.on_end: list[Callable[[CompositeObservation], None]] = []
        self._queue: asyncio.Queue[Content | None] = asyncio.Queue(maxsize)

    def push(self, content: Content) -> None:
        self.value = content
        self.notifications += 1
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(content)

    def end(self, error: BaseException | None = None) -> None:
        """Cancel on the wire (the device's next notification gets RST) and end the iterator."""
        if self.cancelled:
            return
        self.cancelled = True
        self.error = error
        aobs, self.aiocoap_obs = self.aiocoap_obs, None
        if aobs is not None and not aobs.cancelled:
            aobs.cancel()
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
        for fn in self.on_end:
            fn(self)

    cancel = end

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

    def __repr__(self) -> str:
        state = "cancelled" if self.cancelled else "active"
        paths = ",".join(str(p) for p in self.paths)
        return f"<CompositeObservation {self.endpoint} [{paths}] {state} n={self.notifications}>"
