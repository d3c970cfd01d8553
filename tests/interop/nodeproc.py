"""Node.js child processes for the interop tests: the project in ``tests/interop/node`` (npm ``lwm2m-node-lib``
client, npm ``lwm2m-codec``), driven over stdin/stdout JSON lines.

Tests skip, never fail, when ``node`` or the installed ``node_modules`` are missing (CI installs them with
``npm ci --prefix tests/interop/node``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "node"
NODE = shutil.which("node")


def missing_tooling(package: str) -> str | None:
    """Why the tests using npm ``package`` cannot run here, or None."""
    if NODE is None:
        return "node is not installed (Node.js >= 18 needed for the interop tests)"
    if not (NODE_DIR / "node_modules" / package / "package.json").is_file():
        return f"npm package {package} is not installed: run `npm ci --prefix {NODE_DIR}`"
    return None


def requires(package: str) -> pytest.MarkDecorator:
    reason = missing_tooling(package)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


class NodeProcess:
    """A node script; ``lines`` collects every JSON line it printed, ``stderr`` its diagnostics."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.stderr = bytearray()
        self._consumed = 0
        self._changed = asyncio.Condition()
        self._tasks = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]

    @classmethod
    async def start(cls, script: str, *args: str) -> NodeProcess:
        assert NODE is not None
        env = {**os.environ, "NODE_NO_WARNINGS": "1"}
        proc = await asyncio.create_subprocess_exec(
            NODE, str(NODE_DIR / script), *args, cwd=NODE_DIR, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(proc)

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            if raw.strip():
                try:
                    item = json.loads(raw)
                except ValueError:
                    item = {"event": "garbage", "line": raw.decode(errors="replace")}
                async with self._changed:
                    self.lines.append(item)
                    self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.stderr += raw[: max(0, 20_000 - len(self.stderr))]

    def diagnostics(self) -> str:
        return f"stdout lines: {self.lines!r}\nstderr: {self.stderr.decode(errors='replace')[-2000:]}"

    async def send(self, **message: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def next_line(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next line not returned yet, in order."""

        def ready() -> bool:
            return len(self.lines) > self._consumed or self.proc.stdout is None or self.proc.stdout.at_eof()

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout)
            except TimeoutError:
                raise AssertionError(f"no line from node in {timeout} s\n{self.diagnostics()}") from None
            if len(self.lines) <= self._consumed:
                raise AssertionError(f"node exited (code {self.proc.returncode})\n{self.diagnostics()}")
            self._consumed += 1
            return self.lines[self._consumed - 1]

    async def expect(self, event: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """The next line with ``"event": event`` and ``fields`` (lines in between are skipped); an
        ``"event": "error"`` line on the way fails at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            line = await self.next_line(max(0.01, deadline - loop.time()))
            if line.get("event") == "error":
                raise AssertionError(f"node reported {line}\n{self.diagnostics()}")
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items()):
                return line

    def seen(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [x for x in self.lines if x.get("event") == event and all(x.get(k) == v for k, v in fields.items())]

    async def close(self, timeout: float = 5.0) -> int:
        """Close stdin (the script's cue to de-register and exit) and wait; kill it if it hangs."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 1.0)
        return self.proc.returncode if self.proc.returncode is not None else -1
