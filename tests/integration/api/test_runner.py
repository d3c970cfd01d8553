"""ApiRunner: ephemeral port, busy port as OSError, prompt shutdown with open SSE streams."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest

from lwm2m_server.api import ApiRunner, create_app
from tests.integration.api.conftest import running_stack


async def test_port_zero_busy_port_and_shutdown_with_open_stream(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        assert stack.runner.port and stack.runner.port > 0
        assert stack.runner.url == f"http://127.0.0.1:{stack.runner.port}"

        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            taken = busy.getsockname()[1]
            with pytest.raises(OSError):
                await ApiRunner(create_app(stack.server), "127.0.0.1", taken).start()

        second = ApiRunner(create_app(stack.server, tokens=stack.auth.tokens, sse_keepalive_s=30.0), "127.0.0.1", 0)
        await second.start()
        async with httpx.AsyncClient(base_url=second.url, timeout=10.0, headers=stack.auth.headers) as http:
            assert (await http.get("/healthz")).json()["status"] == "ok"
            lines: list[str] = []

            async def follow() -> None:
                async with http.stream("GET", "/api/events") as response:
                    async for line in response.aiter_lines():
                        lines.append(line)

            reader = asyncio.create_task(follow())
            for _ in range(100):
                if lines:
                    break
                await asyncio.sleep(0.02)
            assert ": connected" in lines
            started = time.monotonic()
            await second.stop()
            assert time.monotonic() - started < 3.0  # the open stream does not hold the shutdown
            await asyncio.wait_for(reader, 5.0)  # and the client sees the stream end cleanly
        await second.stop()  # idempotent
        # the first runner still serves
        assert (await stack.http.get("/healthz")).status_code == 200


async def test_accepted_connections_have_nodelay(tmp_path: Path) -> None:
    """Headers and body go out as two writes: without TCP_NODELAY, Nagle holds the body until the client's
    delayed ACK (~40 ms per response). Every accepted connection must have it on."""
    async with running_stack(tmp_path) as stack:
        server = stack.runner._server
        assert server is not None
        async with httpx.AsyncClient(base_url=stack.runner.url, timeout=10.0) as http:
            assert (await http.get("/healthz")).status_code == 200
            conns = list(server.server_state.connections)
            assert conns
            for conn in conns:
                sock = conn.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            slowest = 0.0
            for _ in range(5):
                t0 = time.perf_counter()
                await http.get("/healthz")
                slowest = max(slowest, time.perf_counter() - t0)
            assert slowest < 0.035  # far below the 40 ms delayed-ACK stall on every response
