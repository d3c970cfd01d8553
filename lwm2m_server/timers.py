"""One timer task for many deadlines (registration expiry, queue-mode sleep), instead of a task per device.

Deadlines live in a heap keyed by ``(kind, key)``. Re-arming a key just pushes a new entry and bumps its
generation; stale heap entries are skipped when they surface (lazy deletion), so arm/cancel are O(log n)
and a 100k-device fleet costs one sleeping task.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Hashable

from lwm2m_server.logging import get_logger

log = get_logger(__name__)


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True if it was set.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that arrives as the inner wait
    completes, and a background loop built on it then never ends (a server stop that hangs forever)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()

TimerKey = tuple[str, Hashable]


class TimerHeap:
    def __init__(self, callback: Callable[[str, Hashable], None], clock: Callable[[], float] = time.time) -> None:
        self._callback = callback
        self._clock = clock
        self._heap: list[tuple[float, int, str, Hashable, int]] = []
        self._gen: dict[TimerKey, int] = {}
        self._deadline: dict[TimerKey, float] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="timer-heap")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def arm(self, kind: str, key: Hashable, deadline: float) -> None:
        """(Re)arm the timer ``(kind, key)`` to fire at wall-clock ``deadline``."""
        tk = (kind, key)
        gen = self._gen.get(tk, 0) + 1
        self._gen[tk] = gen
        self._deadline[tk] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), kind, key, gen))
        if self._heap[0][4] == gen and self._heap[0][2] == kind and self._heap[0][3] == key:
            self._wake.set()  # new earliest deadline: the runner must re-compute its sleep
        if len(self._heap) > 4 * len(self._gen) + 1024:
            self._compact()

    def cancel(self, kind: str, key: Hashable) -> None:
        tk = (kind, key)
        if tk in self._gen:
            del self._gen[tk]
            del self._deadline[tk]

    def deadline(self, kind: str, key: Hashable) -> float | None:
        return self._deadline.get((kind, key))

    def __len__(self) -> int:
        return len(self._gen)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._gen.get((e[2], e[3])) == e[4]]
        heapq.heapify(self._heap)

    def fire_due(self) -> int:
        """Fire every due timer now; returns how many fired."""
        now = self._clock()
        fired = 0
        while self._heap and self._heap[0][0] <= now:
            _, _, kind, key, gen = heapq.heappop(self._heap)
            tk = (kind, key)
            if self._gen.get(tk) != gen:
                continue
            del self._gen[tk]
            del self._deadline[tk]
            fired += 1
            try:
                self._callback(kind, key)
            except Exception:
                log.exception("timer_callback_failed", kind=kind, key=str(key))
        return fired

    async def _run(self) -> None:
        while True:
            self.fire_due()
            self._wake.clear()
            delay = max(0.0, self._heap[0][0] - self._clock()) if self._heap else 3600.0
            await wait_event(self._wake, min(delay, 3600.0))
