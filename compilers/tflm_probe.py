"""Ground truth for arena sizes: ask the real TFLite Micro interpreter (``tflite-micro`` on PyPI).

The interpreter allocates its tensors in the constructor and fails when the arena is too small,
so the smallest accepted arena is found by bisection. Attempts run in a child process: for some
too-small arenas this build crashes (SIGSEGV) instead of failing cleanly. ``print_allocations()`` writes the
RecordingMicroAllocator report from C (not through Python's ``sys.stdout``), so it is captured by
redirecting file descriptors 1 and 2.

CPU-bound and synchronous: call it from a worker process, never from the event loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[1]

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL = re.compile(r"Arena allocation tail (\d+) bytes")
_CATEGORY = re.compile(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+)")


class ProbeError(RuntimeError):
    """The runtime rejected the model even with a generous arena, or its report was unreadable."""


@dataclass(frozen=True)
class Category:
    """One line of the RecordingMicroAllocator report."""

    used: int
    requested: int
    count: int


@dataclass(frozen=True)
class ArenaMeasurement:
    """What the real runtime used: head (planned, non-persistent), tail (persistent), and
    the smallest arena size it accepts."""

    head_bytes: int
    tail_bytes: int
    used_bytes: int
    min_arena_bytes: int
    categories: dict[str, Category] = field(default_factory=dict)

    def __iter__(self) -> Iterator[int]:
        """Unpacks as ``head, tail, min_total = measure_arena(model)``."""
        return iter((self.head_bytes, self.tail_bytes, self.min_arena_bytes))


def capture_fd_output(fn: Callable[[], Any]) -> tuple[Any, str]:
    """Run ``fn`` with C-level stdout and stderr redirected into a temp file; return (result, text)."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            result = fn()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        sink.seek(0)
        return result, sink.read().decode("utf-8", "replace")


def _interpreter(model: bytes, arena_size: int) -> Any:
    from tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=arena_size)


def _try(model: bytes, arena_size: int, want_report: bool) -> tuple[bool, str]:
    """In-process attempt (only ever run inside the worker process: TFLM may crash)."""

    def attempt() -> bool:
        try:
            interpreter = _interpreter(model, arena_size)
        except RuntimeError:
            return False
        if want_report:
            interpreter.print_allocations()
        return True

    ok, text = capture_fd_output(attempt)
    return bool(ok), text


def _serve() -> None:
    """Worker loop: one JSON request per line on stdin, one JSON answer per line on stdout."""
    models: dict[str, bytes] = {}
    out = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        req = json.loads(line)
        path = req["model"]
        if path not in models:
            models[path] = Path(path).read_bytes()
        ok, text = _try(models[path], int(req["arena"]), bool(req.get("report")))
        out.write(json.dumps({"ok": ok, "text": text if req.get("report") or req.get("why") else ""}) + "\n")
        out.flush()


class TflmProbe:
    """Runs the real interpreter in a child process, because this TFLM build dereferences null
    (SIGSEGV) for some too-small arenas instead of failing cleanly. A crash counts as a rejection
    and the worker is restarted."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="tflm-probe-")
        self._paths: dict[bytes, str] = {}

    def __enter__(self) -> TflmProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        self._dir.cleanup()

    def _path(self, model: bytes) -> str:
        key = hashlib.sha256(model).digest()
        if key not in self._paths:
            path = Path(self._dir.name) / f"{key.hex()[:16]}.tflite"
            path.write_bytes(model)
            self._paths[key] = str(path)
        return self._paths[key]

    def _worker(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH", "")]))
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from compilers.tflm_probe import _serve; _serve()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        return self._proc

    def _ask(self, model: bytes, arena_size: int, want_report: bool, why: bool = False) -> tuple[bool, str]:
        proc = self._worker()
        assert proc.stdin is not None and proc.stdout is not None
        req = {"model": self._path(model), "arena": arena_size, "report": want_report, "why": why}
        try:
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:  # the interpreter crashed: too small an arena
            proc.wait()
            self._proc = None
            return False, ""
        answer = json.loads(line)
        return bool(answer["ok"]), str(answer["text"])

    def accepts(self, model: bytes, arena_size: int) -> bool:
        """True when the real interpreter allocates all tensors of ``model`` in ``arena_size`` bytes."""
        return self._ask(model, arena_size, False)[0]

    def refusal(self, model: bytes) -> str | None:
        """None when the runtime allocates ``model`` in a generous arena, else the runtime's own message
        (e.g. "Input type: FLOAT32 with filter type: INT8 not supported.")."""
        ok, text = self._ask(model, max(4 * len(model), 1 << 20), False, why=True)
        if ok:
            return None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " ".join(lines) or "the interpreter crashed while allocating"

    def report(self, model: bytes, arena_size: int) -> tuple[int, int, int, dict[str, Category]]:
        """(head, tail, total, categories) as printed by ``print_allocations()``."""
        ok, text = self._ask(model, arena_size, True)
        if not ok:
            raise ProbeError(f"TFLM rejected the model with a {arena_size} B arena")
        head, tail, total = (_search(rx, text) for rx in (_HEAD, _TAIL, _TOTAL))
        categories = {
            m.group(1): Category(int(m.group(2)), int(m.group(3)), int(m.group(4))) for m in _CATEGORY.finditer(text)
        }
        return head, tail, total, categories

    def min_arena(self, model: bytes, floor: int = 0, hint: int | None = None) -> int:
        """Smallest arena size (bytes) the runtime accepts, by bisection between ``floor``
        (assumed rejected) and an accepted size found by doubling."""
        hi = max(hint or 0, floor + 1, 64)
        tries = 0
        while not self.accepts(model, hi):
            hi *= 2
            tries += 1
            if tries > 24:
                raise ProbeError("TFLM rejects the model even with a huge arena")
        lo = floor
        if hint is not None and floor < hint - 64 < hi and not self.accepts(model, hint - 64):
            lo = hint - 64  # common case: the answer is within a few bytes of what was used
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.accepts(model, mid):
                hi = mid
            else:
                lo = mid
        return hi

    def measure(self, model: bytes) -> ArenaMeasurement:
        """Head, tail and total reported by the runtime, plus the smallest accepted arena."""
        generous = max(4 * len(model), 1 << 20)
        if not self.accepts(model, generous):
            raise ProbeError("TFLM cannot allocate this model (unsupported op or type?)")
        head, tail, used, categories = self.report(model, generous)
        smallest = self.min_arena(model, floor=0, hint=used)
        return ArenaMeasurement(head, tail, used, smallest, categories)


def measure_arena(model: bytes) -> ArenaMeasurement:
    """One-shot measurement (starts and stops a worker process; reuse a TflmProbe for many)."""
    with TflmProbe() as probe:
        return probe.measure(model)


def runtime_refusal(model: bytes) -> str | None:
    """One-shot :meth:`TflmProbe.refusal` (starts and stops a worker process)."""
    with TflmProbe() as probe:
        return probe.refusal(model)


def accepts(model: bytes, arena_size: int) -> bool:
    with TflmProbe() as probe:
        return probe.accepts(model, arena_size)


def _search(rx: re.Pattern[str], text: str) -> int:
    match = rx.search(text)
    if match is None:
        raise ProbeError(f"allocation report lacks {rx.pattern!r}: {text[:300]!r}")
    return int(match.group(1))
