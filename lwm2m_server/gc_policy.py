"""The server process's garbage-collector policy: fewer, shorter pauses on the event loop.

CPython's automatic full (generation 2) collections walk every tracked object; with tens of thousands of
registrations that is a 100-400 ms pause, and a registration storm triggers dozens of them (each time the
survivors grow by a quarter). Every such pause is a REST/CoAP latency spike. The policy, applied once start-up is
done (``tinymlaas serve``, the demo and the benches call :func:`start_gc_policy` the same way):

* ``gc.freeze()``: start-up objects (modules, the object model, reloaded registrations) leave the generations;
* the generation-0 threshold ``gc_threshold0`` (default CPython's 700: 50,000 made one young collection of a
  10k storm a 7 ms pause instead of 72 pauses under 0.3 ms, see ``bench/registration_storm.py --modes
  full,cpython-gc``);
* no automatic full collection when ``gc_full_interval_s`` > 0: instead one full collection every that many
  seconds, from a timer (cyclic garbage is still reclaimed, at a known, rare moment). 0 keeps CPython's automatic
  full collections.

Reference counting frees acyclic objects immediately whatever the policy; only cycles wait for a collection.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from lwm2m_server.config import ServerSettings
from lwm2m_server.logging import get_logger

log = get_logger("tinymlaas.gc")

NEVER = 1 << 30
"""A generation-2 threshold no run reaches: the count grows by one per generation-1 collection."""


class GenerationPauses:
    """Count, total and longest pause of one generation's collections."""

    __slots__ = ("count", "max_ms", "total_ms")

    def __init__(self) -> None:
        self.count, self.total_ms, self.max_ms = 0, 0.0, 0.0

    def add(self, pause_ms: float) -> None:
        self.count += 1
        self.total_ms += pause_ms
        self.max_ms = max(self.max_ms, pause_ms)

    def to_json(self) -> dict[str, float]:
        return {"count": self.count, "total_ms": round(self.total_ms, 1), "max_ms": round(self.max_ms, 1)}


class GcPolicy:
    """Applies the thresholds; :meth:`run` is the periodic full collection (a task of the caller's loop)."""

    def __init__(self, threshold0: int, full_interval_s: float) -> None:
        if threshold0 < 1:
            raise ValueError("gc_threshold0 must be >= 1")
        if full_interval_s < 0:
            raise ValueError("gc_full_interval_s must be >= 0")
        self.threshold0 = threshold0
        self.full_interval_s = full_interval_s
        self.full_collections = 0
        self.pauses = [GenerationPauses() for _ in range(3)]  # every collection while applied, by generation
        self._saved: tuple[int, int, int] | None = None
        self._started = 0.0

    @classmethod
    def from_settings(cls, server: ServerSettings) -> GcPolicy:
        return cls(server.gc_threshold0, server.gc_full_interval_s)

    def apply(self) -> None:
        """Freeze what start-up made and set the thresholds (the previous ones are restored by :meth:`restore`)."""
        if self._saved is None:
            self._saved = gc.get_threshold()
        gc.collect()  # start-up garbage goes before the survivors are frozen
        gc.freeze()
        _, t1, t2 = self._saved
        gc.set_threshold(self.threshold0, t1, NEVER if self.full_interval_s > 0 else t2)
        if self._track not in gc.callbacks:
            gc.callbacks.append(self._track)

    def restore(self) -> None:
        """The thresholds as they were, and the frozen objects back in the oldest generation."""
        if self._track in gc.callbacks:
            gc.callbacks.remove(self._track)
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            gc.unfreeze()
            self._saved = None

    def _track(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[int(info["generation"])].add((time.perf_counter() - self._started) * 1000)

    def stats(self) -> dict[str, Any]:
        """Collections and their pauses (ms) by generation since :meth:`apply` (what the benches print)."""
        return {f"gen{g}": p.to_json() for g, p in enumerate(self.pauses)}

    def collect_full(self) -> float:
        """One full collection now; returns its pause in ms (logged)."""
        t0 = time.perf_counter()
        found = gc.collect()
        pause_ms = (time.perf_counter() - t0) * 1000
        self.full_collections += 1
        log.debug("gc.full_collection", pause_ms=round(pause_ms, 1), unreachable=found)
        return pause_ms

    async def run(self) -> None:
        """Until cancelled: a full collection every ``full_interval_s`` (nothing to do when it is 0)."""
        if self.full_interval_s <= 0:
            return
        while True:
            await asyncio.sleep(self.full_interval_s)
            self.collect_full()


def start_gc_policy(server: ServerSettings) -> tuple[GcPolicy, asyncio.Task[None]]:
    """Apply the ``[server]`` GC policy in the running loop's process; cancel the task at shutdown."""
    policy = GcPolicy.from_settings(server)
    policy.apply()
    return policy, asyncio.create_task(policy.run(), name="gc-full-collections")
