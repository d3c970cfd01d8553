"""Client-side observations (server observes a device path): notifications as a callback and an async iterator.

aiocoap's callback interface is used (not its lossy async iterator) so every notification is decoded, published
and counted as an uplink, without a task per observation. The iterator side keeps a bounded queue that drops the
oldest value for a slow consumer: observe is lossy by nature (RFC 7641), only the latest state matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath

NotifyCallback = Callable[[str, LwM2MPath, Content], None]


class Observation:
    def __init__(self, endpoint: str, path: LwM2MPath, reg_id: str, maxsize: int = 64) -> None:
        self.endpoint = endpoint
        self.path = path
        self.reg_id = reg_id
        self.address: tuple[str, int] | None = None
        self.value: Content = {}
        self.notifications = 0
        self.cancelled = False
        self.error: BaseException | None = None
        self._queue: asyncio.Queue[Content | None] = asyncio.Queue(maxsize)
        self._aiocoap_obs: Any = None
        self._on_cancel: list[Callable[[Observation], None]] = []

    def _push(self, content: Content) -> None:
        self.value = content
        self.notifications += 1
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(content)

    def _end(self, error: BaseException | None = None) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        self.error = error
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
        for fn in self._on_cancel:
            fn(self)

    def cancel(self) -> None:
        """Stop observing locally; the device's next notification is answered with RST (RFC 7641 §3.6)."""
        obs = self._aiocoap_obs
        self._aiocoap_obs = None
        if obs is not None and not obs.cancelled:
            obs.cancel()
        self._end()

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
        return f"<Observation {self.endpoint}{self.path} {state} n={self.notifications}>"
