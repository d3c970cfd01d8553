"""The process's one compile service, shared by OTA, rollouts and the API, created on first use.

Creating a :class:`compilers.planner.CompileService` starts a process pool (and loading TensorFlow is slow), so
a server that never compiles never pays for it. The :class:`Compiling` holder is built once by the
composition root and handed to every service that compiles; ``started`` lets the metrics read its cache
counters without creating it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lwm2m_server.config import Settings


class Compiling:
    def __init__(self, settings: Settings, service: Any | None = None) -> None:
        """``service``: an already made CompileService (the demo's, with its own cache and zoo epochs)."""
        self._settings = settings
        self._service = service

    @property
    def service(self) -> Any:
        if self._service is None:
            from lwm2m_server.ota.builds import make_compile_service

            self._service = make_compile_service(self._settings)
        return self._service

    @property
    def started(self) -> Any | None:
        """The compile service if one exists yet (never creates it)."""
        return self._service

    async def close(self) -> None:
        service, self._service = self._service, None
        close = getattr(service, "close", None) or getattr(service, "shutdown", None)
        if callable(close):
            result = close()
            if asyncio.iscoroutine(result):
                await result
