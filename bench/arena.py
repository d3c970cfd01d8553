"""Arena planner vs the real TFLite Micro runtime, and the offline plan vs TFLM's greedy plan.

Models: the MLPerf Tiny references (../shared/models/mlperf-tiny) and equivalents of the tflite-micro
repository's examples built here with the real TF converter (tests/support/tflm_models.py: hello_world
float32/int8/16x8, micro_speech int8/16x8, LSTM float32/int8, batch matmul, int32 I/O, a hybrid model),
built once into ~/.cache/tinymlaas. The repository's own .tflite files cannot be downloaded here.

For each model: our planned total vs the runtime's smallest accepted arena (bisection), the offline
plan's saving, and our 32-bit MCU figure. A model the runtime refuses is listed with its reason.

Usage: python bench/arena.py [MODEL.tflite ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compilers.arena import plan_arena
from compilers.offline_plan import optimize
from compilers.tflm_probe import TflmProbe

MLPERF = sorted(Path("/work/shared/models/mlperf-tiny").glob("*.tflite"))


def default_models() -> list[Path]:
    from tests.support.tflm_models import build_all, default_cache

    return MLPERF + list(build_all(default_cache()).values())


def main(paths: list[Path]) -> None:
    print(
        f"{'model':<24} {'head ours/TFLM':>17} {'tail ours/TFLM':>15} {'total ours':>10} {'min TFLM':>9} "
        f"{'err':>7} | {'offline head':>12} {'min TFLM':>9} {'saved':>7} {'ratio':>6} {'plan s':>6} | {'32-bit':>7}"
    )
    started = time.perf_counter()
    exact = measured = 0
    refused: list[str] = []
    with TflmProbe() as probe:
        for path in paths:
            data = path.read_bytes()
            reason = probe.refusal(data)
            if reason is not None:
                refused.append(f"{path.stem}: {reason}")
                print(f"{path.stem:<24} refused by TFLM: {reason}")
                continue
            plan = plan_arena(data)
            real = probe.measure(data)
            measured += 1
            exact += plan.total_bytes == real.min_arena_bytes
            err = 100.0 * (plan.total_bytes - real.min_arena_bytes) / real.min_arena_bytes
            t0 = time.perf_counter()
            off = optimize(data)
            plan_s = time.perf_counter() - t0
            off_min = probe.measure(off.model).min_arena_bytes if off.model is not data else real.min_arena_bytes
            print(
                f"{path.stem:<24} {plan.head_bytes:>8}/{real.head_bytes:<8} {plan.tail_bytes:>7}/{real.tail_bytes:<7} "
                f"{plan.total_bytes:>10} {real.min_arena_bytes:>9} {err:>+6.2f}% | {off.head_bytes:>12} "
                f"{off_min:>9} {real.min_arena_bytes - off_min:>7} {off_min / real.min_arena_bytes:>6.3f} "
                f"{plan_s:>6.2f} | {plan_arena(data, 4).total_bytes:>7}"
            )
    print(f"exact to the byte: {exact} of {measured} models the runtime allocates ({len(refused)} refused)")
    print(f"({time.perf_counter() - started:.1f} s including TFLM bisection)")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or default_models())
