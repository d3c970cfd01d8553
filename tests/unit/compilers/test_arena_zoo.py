"""Arena planner against the real TFLite Micro runtime on every zoo variant the compilers build
(float32, int8, pruned int8). Vela output is skipped: its ethos-u custom op has no TFLM kernel
in the Python runtime, so there is nothing to measure against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from compilers.arena import plan_arena
from compilers.artifact import Artifact
from compilers.tflm_probe import TflmProbe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def probe() -> Iterator[TflmProbe]:
    with TflmProbe() as p:
        yield p


def test_every_zoo_variant_matches_tflm(zoo_artifacts: dict[str, list[Artifact]], probe: TflmProbe) -> None:
    checked = []
    for model, artifacts in zoo_artifacts.items():
        for art in artifacts:
            if art.variant == "int8-vela":
                continue
            plan = plan_arena(art.data)
            real = probe.measure(art.data)
            label = f"{model}/{art.variant}"
            assert plan.head_bytes == real.head_bytes, label
            assert plan.tail_bytes == real.tail_bytes, label
            assert abs(plan.total_bytes - real.min_arena_bytes) <= 0.01 * real.min_arena_bytes, label
            assert probe.accepts(art.data, plan.total_bytes), label
            assert art.arena_bytes == plan.total_bytes, label
            checked.append(label)
            print(  # visible with -s: the per-variant table for the report
                f"{label:<32} head {plan.head_bytes}/{real.head_bytes} tail {plan.tail_bytes}/{real.tail_bytes} "
                f"total {plan.total_bytes} min {real.min_arena_bytes}"
            )
    assert {c.split("/")[1] for c in checked} >= {"float32", "int8", "int8-pruned50", "int8-pruned80"}
