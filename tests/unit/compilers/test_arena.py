"""Arena planner: the greedy port on hand-made buffer sets, and the MLPerf Tiny models against the
real TFLite Micro runtime (head to the byte, total within 1 % of the smallest accepted arena)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compilers.arena import ArenaPlan, plan_arena
from compilers.greedy_planner import Buffer, max_memory, plan_offsets, sorted_order
from compilers.tflite_schema import ModelFormatError, parse_model
from compilers.tflm_probe import TflmProbe
from tests.support.shared import MLPERF

MODELS = sorted(MLPERF.glob("*.tflite"))


@pytest.fixture(scope="module")
def probe() -> Iterator[TflmProbe]:
    with TflmProbe() as p:
        yield p


def _assert_no_overlap(plan: ArenaPlan) -> None:
    bufs = plan.buffers
    for i, a in enumerate(bufs):
        assert a.offset % 16 == 0 and a.size % 16 == 0
        for b in bufs[i + 1 :]:
            if a.first > b.last or b.first > a.last:
                continue  # never alive together
            assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)


# --- the greedy planner port ---------------------------------------------------------------


def test_disjoint_lifetimes_share_offset_zero() -> None:
    bufs = [Buffer(10, 0, 1), Buffer(20, 2, 3)]
    offsets = plan_offsets(bufs)
    assert offsets == [0, 0]
    assert max_memory(bufs, offsets) == 20


def test_largest_first_and_ties_last_added_first() -> None:
    bufs = [Buffer(32, 0, 2), Buffer(32, 1, 3), Buffer(64, 0, 3)]
    assert sorted_order(bufs) == [2, 1, 0]  # 64 first; of the equal 32s the later one wins
    offsets = plan_offsets(bufs)
    assert offsets == [96, 64, 0]
    assert max_memory(bufs, offsets) == 128


def test_small_buffer_fills_a_gap() -> None:
    # 0 and 2 are alive at t=0..1 and t=3..4; 1 (large) spans both; 3 fits in the gap of 0's slot.
    bufs = [Buffer(48, 0, 1), Buffer(100, 0, 4), Buffer(48, 3, 4), Buffer(16, 2, 2)]
    offsets = plan_offsets(bufs)
    assert offsets[1] == 0
    assert offsets[3] == 100  # gap above the big buffer, nothing else alive at t=2
    assert max_memory(bufs, offsets) == 148


def test_offline_offsets_are_kept_and_placed_first() -> None:
    bufs = [Buffer(32, 0, 1, offline_offset=64), Buffer(64, 0, 1)]
    offsets = plan_offsets(bufs)
    assert offsets == [64, 0]


def test_garbage_is_a_model_format_error() -> None:
    with pytest.raises(ModelFormatError):
        plan_arena(b"not a flatbuffer at all")
    with pytest.raises(ModelFormatError):
        plan_arena(b"\x00\x00\x00\x00TFL3" + b"\xff" * 40)


# --- real models ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_plan_is_consistent(path: Path) -> None:
    plan = plan_arena(path.read_bytes())
    _assert_no_overlap(plan)
    assert plan.head_bytes == max(b.offset + b.size for b in plan.buffers)
    assert plan.lower_bound <= plan.head_bytes
    # The reported tail is for a 16-aligned arena; an arena 8 bytes off can save the padding of
    # 8-aligned structs (the runtime accepts vww at head + tail - 8).
    assert plan.total_bytes >= plan.head_bytes + plan.tail_bytes - 8
    assert plan.unmodeled_ops == ()
    model = parse_model(path.read_bytes())
    last_scope = len(model.main.operators)
    for b in plan.buffers:
        # TFLM (micro_allocation_info.cc): graph inputs are created at scope 0 and live until
        # their last consumer; outputs are (re)created by their producer and live to the end.
        if b.kind == "tensor" and b.index in model.main.inputs:
            assert b.first == 0 and b.last >= 1
        if b.kind == "tensor" and b.index in model.main.outputs:
            assert b.last == last_scope


def test_mlperf_models_are_present() -> None:
    assert len(MODELS) == 4


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_matches_real_tflm(path: Path, probe: TflmProbe) -> None:
    data = path.read_bytes()
    plan = plan_arena(data)
    measured = probe.measure(data)
    assert plan.head_bytes == measured.head_bytes
    assert plan.tail_bytes == measured.tail_bytes
    assert abs(plan.total_bytes - measured.min_arena_bytes) <= 0.01 * measured.min_arena_bytes
    assert probe.accepts(data, plan.total_bytes)
    assert not probe.accepts(data, measured.min_arena_bytes - 1)


def test_probe_survives_runtime_crashes_on_tiny_arenas(probe: TflmProbe) -> None:
    data = (MLPERF / "ad01_int8.tflite").read_bytes()
    # This TFLM build dereferences null (SIGSEGV) for arenas this small; the worker absorbs it.
    assert not probe.accepts(data, 100)
    assert not probe.accepts(data, 300)
    assert probe.accepts(data, 1 << 16)  # a fresh worker answers afterwards
    head, tail, smallest = probe.measure(data)
    plan = plan_arena(data)
    assert (head, tail) == (plan.head_bytes, plan.tail_bytes)
    assert smallest > head + tail  # the planner's temporary arrays dominate this small-head model
    assert plan.planning_peak_bytes > plan.head_bytes + plan.tail_bytes  # the binding constraint,
    assert plan.total_bytes - 16 < plan.planning_peak_bytes <= plan.total_bytes  # rounded to the size residue
