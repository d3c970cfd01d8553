"""A tighter tensor-arena plan than TFLM's greedy one, shipped inside the model as TFLM's
"OfflineMemoryAllocation" metadata (micro_allocation_info.cc reads it; -1 = plan online).

Dynamic storage allocation is NP-hard, but TinyML graphs are small, so we search: first-fit in
many orders (TFLM's size order, first use, lifetime, random shuffles) plus a two-ended
"ping-pong" packer under a height cap found by bisection. The live-bytes peak is a lower bound;
reaching it proves the plan optimal. Scratch buffers stay online (TFLM cannot pin them), so the
result is re-planned with TFLM's own rules and kept only if the head really shrinks.
"""

from __future__ import annotations

import random
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from compilers.arena import OFFLINE_METADATA, plan_arena, plan_model
from compilers.greedy_planner import Buffer, max_memory, plan_offsets
from compilers.tflite_schema import parse_model

OFFLINE_PLAN_VERSION = 1


@dataclass(frozen=True)
class OfflinePlan:
    model: bytes  # the .tflite with the plan embedded (the input itself when nothing was gained)
    greedy_head_bytes: int
    head_bytes: int
    lower_bound: int
    strategy: str

    @property
    def saved_bytes(self) -> int:
        return self.greedy_head_bytes - self.head_bytes


def _overlaps(a: Buffer, b: Buffer) -> bool:
    return not (a.first > b.last or b.first > a.last)


def _lower_bound(buffers: Sequence[Buffer]) -> int:
    times = {b.first for b in buffers}
    return max((sum(b.size for b in buffers if b.first <= t <= b.last) for t in times), default=0)


def _gaps(occupied: list[tuple[int, int]], cap: int) -> list[tuple[int, int]]:
    gaps, cursor = [], 0
    for start, end in sorted(occupied):
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < cap:
        gaps.append((cursor, cap))
    return gaps


def ping_pong(buffers: Sequence[Buffer], cap: int) -> list[int] | None:
    """Place buffers in first-use order inside [0, cap), each at the bottom-most or top-most free
    spot, on the side away from the most recent buffer it overlaps. None if it does not fit."""
    order = sorted(range(len(buffers)), key=lambda i: (buffers[i].first, -buffers[i].size))
    offsets: list[int] = [-1] * len(buffers)
    placed: list[int] = []
    for i in order:
        b = buffers[i]
        live = [j for j in placed if _overlaps(b, buffers[j])]
        fits = [(s, e) for s, e in _gaps([(offsets[j], offsets[j] + buffers[j].size) for j in live], cap)]
        fits = [(s, e) for s, e in fits if e - s >= b.size]
        if not fits:
            return None
        low, high = fits[0][0], fits[-1][1] - b.size
        recent = live[-1] if live else None
        go_top = recent is not None and offsets[recent] + buffers[recent].size / 2 < cap / 2
        offsets[i] = high if go_top else low
        placed.append(i)
    return offsets


def search_offsets(buffers: Sequence[Buffer], *, tries: int = 300, seed: int = 0) -> tuple[list[int], str]:
    """Best offsets found for ``buffers`` (all treated as freely placeable) and how."""
    n = len(buffers)
    idx = list(range(n))
    orders: dict[str, list[int]] = {
        "greedy": sorted(idx[::-1], key=lambda i: -buffers[i].size),
        "first-use": sorted(idx, key=lambda i: (buffers[i].first, -buffers[i].size)),
        "lifetime": sorted(idx, key=lambda i: (-(buffers[i].last - buffers[i].first), -buffers[i].size)),
        "area": sorted(idx, key=lambda i: -buffers[i].size * (buffers[i].last - buffers[i].first + 1)),
    }
    bound = _lower_bound(buffers)
    best: tuple[int, list[int], str] | None = None

    def consider(offsets: list[int], how: str) -> None:
        nonlocal best
        height = max_memory(buffers, offsets)
        if best is None or height < best[0]:
            best = (height, offsets, how)

    for how, order in orders.items():
        consider(plan_offsets(buffers, order), how)
    rng = random.Random(seed)
    for k in range(tries):
        if best is not None and best[0] <= bound:
            break
        order = idx[:]
        rng.shuffle(order)
        consider(plan_offsets(buffers, order), f"shuffle#{k}")
    assert best is not None
    lo, hi = bound, best[0]  # bisect the cap for the two-ended packer (16-byte steps)
    while lo < hi:
        mid = (lo + hi) // 32 * 16
        mid = max(mid, lo)
        offsets = ping_pong(buffers, mid)
        if offsets is not None:
            consider(offsets, "ping-pong")
            hi = min(mid, best[0])
            if mid == lo:
                break
        else:
            lo = mid + 16
    return best[1], best[2]


def embed(tflite: bytes, offsets: Sequence[int]) -> bytes:
    """Return ``tflite`` with an OfflineMemoryAllocation metadata entry (replacing any old one).

    Re-serialised with the schema's object API, then re-aligned by the TFLM wheel's C++ flatbuffer
    aligner so weight buffers keep their 16-byte alignment."""
    import flatbuffers
    import numpy as np
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper as aligner

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(tflite, 0))
    words = [OFFLINE_PLAN_VERSION, 0, len(offsets), *offsets]
    buf = fb.BufferT()
    buf.data = np.frombuffer(struct.pack(f"<{len(words)}i", *words), dtype=np.uint8)
    model.buffers = [*list(model.buffers or []), buf]
    meta = fb.MetadataT()
    meta.name = OFFLINE_METADATA
    meta.buffer = len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if (m.name or b"") not in (OFFLINE_METADATA, OFFLINE_METADATA.encode())]
    model.metadata = [*kept, meta]
    builder = flatbuffers.Builder(len(tflite) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    packed = bytes(builder.Output())
    with tempfile.TemporaryDirectory(prefix="offline-plan-") as tmp:
        src, dst = Path(tmp) / "in.tflite", Path(tmp) / "out.tflite"
        src.write_bytes(packed)
        aligner.align_tflite_model(str(src), str(dst))
        return dst.read_bytes()


def optimize(tflite: bytes, *, tries: int = 300, seed: int = 0) -> OfflinePlan:
    """Search a tighter plan for ``tflite`` and embed it; keep the original if nothing is gained."""
    info = parse_model(tflite)
    greedy = plan_arena(tflite)
    planned, buffers = plan_model(info)
    online = [Buffer(b.size, b.first, b.last) for b in buffers]
    offsets, how = search_offsets(online, tries=tries, seed=seed)
    flat = [-1] * info.tensor_count
    base = [0]
    for sg in info.subgraphs[:-1]:
        base.append(base[-1] + len(sg.tensors))
    for p, off in zip(planned, offsets, strict=True):
        if p.kind == "tensor":
            flat[base[p.subgraph] + p.index] = off
    bound = greedy.lower_bound
    if max_memory(online, offsets) >= greedy.head_bytes:
        return OfflinePlan(tflite, greedy.head_bytes, greedy.head_bytes, bound, "greedy (no gain)")
    model = embed(tflite, flat)
    head = plan_arena(model).head_bytes  # TFLM's own rules: offline tensors, then online scratch
    if head >= greedy.head_bytes:
        return OfflinePlan(tflite, greedy.head_bytes, greedy.head_bytes, bound, "greedy (no gain)")
    return OfflinePlan(model, greedy.head_bytes, head, bound, how)
