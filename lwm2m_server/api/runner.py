"""Serve the FastAPI app with uvicorn on the *current* event loop, next to the CoAP server.

We bind the listening socket ourselves so that a busy port is an ordinary ``OSError`` at ``start()``
(uvicorn would ``sys.exit`` inside a task) and so that port 0 gives the real port before serving.
Signals stay with whoever owns the loop (``tinymlaas serve``), not with uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from lwm2m_server.logging import get_logger

log = get_logger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the embedding process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and without it
    # uvicorn's separately written headers and body meet Nagle + delayed ACK (~40 ms on every response).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class ApiRunner:
    """``await runner.start()`` binds and serves; ``runner.port`` is the bound port; ``await runner.stop()``."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080, *, graceful_s: float = 3.0) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.graceful_s = graceful_s
        self.port: int | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("ApiRunner not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("ApiRunner already started")
        self._sock = _bind(self.host, self.requested_port)
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=max(1, math.ceil(self.graceful_s)),
            loop="none",
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="http-api")
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raises the start-up failure
                raise RuntimeError("HTTP API stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("api.listening", host=self.host, port=self.port)

    async def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        try:
            await self._server.serve(sockets=[self._sock])
        except SystemExit as exc:  # uvicorn exits on lifespan start-up failure; keep it inside the task
            raise RuntimeError(f"HTTP API failed to start (exit {exc.code})") from None

    async def stop(self) -> None:
        """Close SSE streams, stop accepting, finish in-flight requests (up to ``graceful_s``)."""
        if self._task is None or self._server is None:
            return
        for hook in getattr(self.app.state, "shutdown_hooks", ()):
            hook()  # e.g. end the endless SSE streams, which would otherwise hold the graceful shutdown
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.graceful_s + 5.0)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        finally:
            if self._sock is not None:
                self._sock.close()
            self._task = None
            self._server = None
            log.info("api.stopped", port=self.port)

    async def __aenter__(self) -> ApiRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
