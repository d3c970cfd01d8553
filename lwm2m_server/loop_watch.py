"""Event-loop lag: how late a timer fires is how long a REST request or a CoAP datagram waited for the loop.

A probe task sleeps ``interval`` and records how late it woke (a bounded histogram and the maximum). With
``stall_ms`` > 0 a daemon thread also watches the probe: while the loop is late by more than half of
``stall_ms`` it samples the main thread's stack (as ``py-spy dump`` would, without attaching), and when the
probe wakes at least ``stall_ms`` late it logs ``event_loop_stall`` with the lag and the sampled frames, so a
latency spike names the code that held the loop. Off by default (``[server] loop_stall_log_ms = 0``): the
sampling thread takes the GIL every few milliseconds.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from typing import Any

from lwm2m_server.logging import get_logger

log = get_logger("tinymlaas.loop")

BUCKETS_MS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
"""Upper bounds of the lag histogram; one more bucket holds everything above the last."""
STACK_FRAMES = 8
"""Innermost frames kept per sample (a stall is told by its innermost project frames)."""
MAX_SAMPLES = 3


class LoopWatch:
    """The probe (:meth:`run`, a task of the watched loop) and, with ``stall_ms`` > 0, the sampling thread."""

    def __init__(self, interval_s: float = 0.02, stall_ms: float = 0.0) -> None:
        if interval_s <= 0:
            raise ValueError("loop lag probe interval must be > 0")
        if stall_ms < 0:
            raise ValueError("loop_stall_log_ms must be >= 0")
        self.interval_s = interval_s
        self.stall_ms = stall_ms
        self.counts = [0] * (len(BUCKETS_MS) + 1)
        self.max_ms = 0.0
        self.stalls = 0
        self._due = time.monotonic() + interval_s  # when the probe should wake next (read by the thread)
        self._samples: list[list[str]] = []
        self._main_ident = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, lag_ms: float) -> None:
        for i, bound in enumerate(BUCKETS_MS):
            if lag_ms <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.max_ms = max(self.max_ms, lag_ms)

    def percentile_ms(self, p: float) -> float:
        """The histogram bucket bound under which a fraction ``p`` of the probes woke (inf: beyond the last)."""
        total, seen = sum(self.counts), 0
        for i, n in enumerate(self.counts):
            seen += n
            if total and seen >= p * total:
                return BUCKETS_MS[i] if i < len(BUCKETS_MS) else float("inf")
        return 0.0

    def pending_samples(self) -> int:
        """Stacks the sampling thread took in the current late window (not yet logged)."""
        return len(self._samples)

    def stats(self) -> dict[str, Any]:
        return {"probes": sum(self.counts), "max_ms": round(self.max_ms, 1), "p99_le_ms": self.percentile_ms(0.99),
                "stalls": self.stalls}

    async def run(self) -> None:
        """Until cancelled: sleep, record the lateness, report a stall (with the thread's samples)."""
        if self.stall_ms > 0 and self._thread is None:
            self._main_ident = threading.get_ident()
            self._thread = threading.Thread(target=self._sample_stalls, name="loop-stall-sampler", daemon=True)
            self._thread.start()
        try:
            while True:
                self._due = time.monotonic() + self.interval_s
                cpu0, proc0 = time.thread_time(), time.process_time()
                await asyncio.sleep(self.interval_s)
                lag_ms = (time.monotonic() - self._due) * 1000
                self._due = float("inf")  # the loop runs again: no samples of this task's own logging
                self.record(lag_ms)
                samples, self._samples = self._samples, []
                if self.stall_ms > 0 and lag_ms >= self.stall_ms:
                    # busy: the loop thread's own CPU in the window; the rest it waited (GIL, CPU, a syscall)
                    busy_ms = (time.thread_time() - cpu0) * 1000
                    process_ms = (time.process_time() - proc0) * 1000  # all threads: above busy = other threads
                    self.stalls += 1
                    log.warning("event_loop_stall", lag_ms=round(lag_ms, 1), busy_ms=round(busy_ms, 1),
                                process_ms=round(process_ms, 1),
                                window_ms=round(lag_ms + self.interval_s * 1000, 1), samples=samples)
        finally:
            self._stop.set()

    def _sample_stalls(self) -> None:
        half = self.stall_ms / 2000
        while not self._stop.wait(half):
            late = time.monotonic() - self._due
            if late > half and len(self._samples) < MAX_SAMPLES:
                frame = sys._current_frames().get(self._main_ident)
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-STACK_FRAMES:]
                    self._samples.append([f"{f.filename}:{f.lineno} {f.name}" for f in stack])


def start_loop_watch(stall_ms: float) -> tuple[LoopWatch, asyncio.Task[None]]:
    """The probe on the running loop; cancel the task at shutdown (that also ends the sampling thread)."""
    watch = LoopWatch(stall_ms=stall_ms)
    return watch, asyncio.create_task(watch.run(), name="loop-lag-probe")
