"""A line-for-line port of TFLite Micro's GreedyMemoryPlanner (memory_planner/greedy_memory_planner.cc).

Buffers are (size, first_time_used, last_time_used[, offline_offset]) in the order TFLM adds them.
Offline-planned buffers keep their offsets and are placed first; online ones are sorted by size,
largest first, with the bubble sort TFLM uses (stable, over a list that was filled from the back,
so equal sizes end up last-added-first). Each buffer then goes into the first gap, in offset
order, that is big enough among the buffers alive at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ONLINE = -1  # kOnlinePlannedBuffer


@dataclass(frozen=True, slots=True)
class Buffer:
    size: int
    first: int
    last: int
    offline_offset: int = ONLINE


def _overlaps(a: Buffer, first: int, last: int) -> bool:
    return not (a.first > last or first > a.last)


def sorted_order(buffers: Sequence[Buffer]) -> list[int]:
    """Buffer ids in the order TFLM places them."""
    n = len(buffers)
    ids = [0] * n
    head, tail = 0, n
    for i, b in enumerate(buffers):
        if b.offline_offset == ONLINE:
            tail -= 1
            ids[tail] = i
        else:
            ids[head] = i
            head += 1
    # Stable descending sort of the online part == TFLM's ReverseSortInPlace bubble sort.
    online = sorted(ids[head:], key=lambda i: -buffers[i].size)
    return ids[:head] + online


def plan_offsets(buffers: Sequence[Buffer], order: Sequence[int] | None = None) -> list[int]:
    """Offsets for each buffer (index-aligned with ``buffers``).

    ``order`` overrides the placement order (used by the offline planner's search); by default it
    is TFLM's own order, which reproduces the runtime's plan exactly.
    """
    if not buffers:
        return []
    ids = list(order) if order is not None else sorted_order(buffers)
    offsets = [-1] * len(buffers)
    placed: list[tuple[int, int]] = []  # (offset, id) kept sorted by offset, insertion-stable
    for rank, bid in enumerate(ids):
        want = buffers[bid]
        if want.offline_offset != ONLINE:
            candidate = want.offline_offset
        elif rank == 0:
            candidate = 0
        else:
            candidate = 0
            for off, other_id in placed:
                other = buffers[other_id]
                if not _overlaps(other, want.first, want.last):
                    continue
                if off - candidate >= want.size:
                    break
                candidate = max(candidate, off + other.size)
        offsets[bid] = candidate
        _insert(placed, candidate, bid)
    return offsets


def _insert(placed: list[tuple[int, int]], offset: int, bid: int) -> None:
    # TFLM inserts before the first entry whose offset is strictly greater (after equal ones),
    # except that a new smallest offset becomes the new list head.
    pos = len(placed)
    for i, (off, _) in enumerate(placed):
        if off > offset:
            pos = i
            break
    placed.insert(pos, (offset, bid))


def max_memory(buffers: Sequence[Buffer], offsets: Sequence[int]) -> int:
    """GetMaximumMemorySize: the high-water mark of the plan."""
    return max((off + b.size for b, off in zip(buffers, offsets, strict=True)), default=0)
