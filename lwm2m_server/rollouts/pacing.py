"""Rate cap for rollouts: a token bucket in devices per minute, with an injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``delay()`` says how long to wait before the next device may start; ``take()`` consumes a slot.

    ``per_minute <= 0`` means unlimited. The bucket holds at most ``burst`` tokens so a paused
    rollout does not release a flood when resumed.
    """

    def __init__(self, per_minute: float, *, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        if self.per_minute > 0:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.per_minute / 60.0)
        self._stamp = now

    def delay(self) -> float:
        if self.per_minute <= 0:
            return 0.0
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) * 60.0 / self.per_minute

    def take(self) -> bool:
        if self.per_minute <= 0:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
