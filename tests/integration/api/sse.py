"""A small SSE reader over httpx for the tests: collects frames from a live ``/api/events`` stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Frame:
    event: str
    data: dict[str, Any]


class SseReader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.comments: list[str] = []
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        event, data = "message", []
        async for line in self.response.aiter_lines():
            if line == "":
                if data:
                    await self.frames.put(Frame(event, json.loads("\n".join(data))))
                event, data = "message", []
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())

    async def next(self, timeout: float = 5.0, **match: Any) -> Frame:
        """The next frame whose event type / endpoint / data fields equal ``match`` (others are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no SSE frame matching {match} within {timeout} s")
            try:
                frame = await asyncio.wait_for(self.frames.get(), remaining)
            except TimeoutError:
                continue
            if all(_field(frame, k) == v for k, v in match.items()):
                return frame

    def drain(self) -> list[Frame]:
        out = []
        while not self.frames.empty():
            out.append(self.frames.get_nowait())
        return out

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._task


def _field(frame: Frame, key: str) -> Any:
    if key == "event":
        return frame.event
    if key in ("endpoint", "type", "ts"):
        return frame.data.get(key)
    return frame.data.get("data", {}).get(key)


@contextlib.asynccontextmanager
async def sse(http: httpx.AsyncClient, **params: Any) -> AsyncIterator[SseReader]:
    async with http.stream("GET", "/api/events", params=params, timeout=httpx.Timeout(10.0, read=None)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        try:
            # the stream is live once the server's greeting comment arrived
            for _ in range(100):
                if reader.comments:
                    break
                await asyncio.sleep(0.02)
            yield reader
        finally:
            await reader.close()
