"""CoAP request counters by direction, method and outcome code, for ``/metrics``.

``out``: every server→device request that went on the wire (DeviceClient, queued or not, observe included),
by CoAP method and response code (``"2.05"``) or transport outcome (``"timeout"``, ``"network"``).
``in``: every request handled by the registration interface (``/rd``), by method and the code we answered.
Plain in-memory counters: cheap on the hot path, read at scrape time.
"""

from __future__ import annotations

from collections import Counter

Key = tuple[str, str, str]  # (direction, method, code)


class CoapStats:
    def __init__(self) -> None:
        self.counts: Counter[Key] = Counter()

    def count_out(self, method: str, code: str) -> None:
        self.counts[("out", method.upper(), code)] += 1

    def count_in(self, method: str, code: str) -> None:
        self.counts[("in", method.upper(), code)] += 1

    def snapshot(self) -> dict[Key, int]:
        return dict(self.counts)

    def get(self, direction: str, method: str, code: str) -> int:
        return self.counts.get((direction, method.upper(), code), 0)
