"""Offline memory plans: never worse than greedy, optimal when they reach the live-bytes bound,
accepted by the real TFLM runtime with a smaller arena, and computing the same outputs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from compilers.arena import plan_arena
from compilers.greedy_planner import Buffer, max_memory
from compilers.offline_plan import optimize, ping_pong, search_offsets
from compilers.tflm_probe import TflmProbe
from tests.support.shared import MLPERF


@pytest.fixture(scope="module")
def probe() -> Iterator[TflmProbe]:
    with TflmProbe() as p:
        yield p


def _chain(sizes: list[int]) -> list[Buffer]:
    """A linear graph: tensor i is produced at step i and consumed at step i + 1."""
    return [Buffer(s, i, i + 1) for i, s in enumerate(sizes)]


def _valid(buffers: list[Buffer], offsets: list[int]) -> bool:
    for i, a in enumerate(buffers):
        for j in range(i + 1, len(buffers)):
            b = buffers[j]
            if a.first > b.last or b.first > a.last:
                continue
            if not (offsets[i] + a.size <= offsets[j] or offsets[j] + b.size <= offsets[i]):
                return False
    return True


def test_ping_pong_packs_a_chain_at_its_lower_bound() -> None:
    chain = _chain([64, 96, 32, 112, 16, 80])
    bound = max(a.size + b.size for a, b in itertools.pairwise(chain))
    offsets = ping_pong(chain, bound)
    assert offsets is not None and _valid(chain, offsets)
    assert max_memory(chain, offsets) == bound
    assert ping_pong(chain, bound - 16) is None


def test_search_is_valid_and_never_worse_than_greedy() -> None:
    import random

    rng = random.Random(3)
    for _ in range(20):
        bufs = []
        for _ in range(12):
            first = rng.randrange(10)
            bufs.append(Buffer(16 * rng.randrange(1, 20), first, first + rng.randrange(4)))
        offsets, _ = search_offsets(bufs, tries=50)
        assert _valid(bufs, offsets)
        greedy = search_offsets(bufs, tries=0)[0]  # includes TFLM's own order
        assert max_memory(bufs, offsets) <= max_memory(bufs, greedy)


def _run(probe_model: bytes, arena: int, x: np.ndarray) -> np.ndarray:
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(probe_model, arena_size=arena)
    interpreter.set_input(x, 0)
    interpreter.invoke()
    return np.asarray(interpreter.get_output(0))


def test_vww_offline_plan_is_optimal_and_accepted_by_tflm(probe: TflmProbe) -> None:
    data = (MLPERF / "vww_96_int8.tflite").read_bytes()
    result = optimize(data)
    assert result.head_bytes < result.greedy_head_bytes
    assert result.head_bytes == result.lower_bound  # provably optimal for this graph
    plan = plan_arena(result.model)
    assert plan.offline_plan and plan.head_bytes == result.head_bytes
    measured = probe.measure(result.model)
    assert measured.head_bytes == result.head_bytes
    greedy_min = probe.measure(data).min_arena_bytes
    assert measured.min_arena_bytes <= greedy_min - result.saved_bytes + 16
    assert probe.accepts(result.model, plan.total_bytes)
    assert abs(plan.total_bytes - measured.min_arena_bytes) <= 0.01 * measured.min_arena_bytes
    # Same answers with the tighter plan (a wrong plan would overwrite live activations).
    x = np.random.default_rng(1).integers(-128, 128, size=(1, 96, 96, 3), dtype=np.int8)
    assert np.array_equal(_run(data, 2 * greedy_min, x), _run(result.model, plan.total_bytes, x))


@pytest.mark.parametrize("name", ["kws_ref_model", "ad01_int8", "pretrainedResnet_quant"])
def test_no_gain_keeps_the_model(name: str) -> None:
    data = (MLPERF / f"{name}.tflite").read_bytes()
    result = optimize(data)
    assert result.head_bytes == result.greedy_head_bytes == result.lower_bound
    assert result.model is data
