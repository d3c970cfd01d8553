"""Compile costs per zoo model: cold compile per variant, warm cache hit, and a 1,000-device fleet.

Usage: python bench/compile.py [--epochs-digits N] [--epochs-vibration N] [--devices 1000]

The fleet has 5 compile classes (two with an Ethos-U NPU); the compile service plans once per class,
and device-independent builds (the TFLite variants) are shared between classes through the cache.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compilers.cache import CompileCache
from compilers.planner import CompileRunner, CompileService, plan
from compilers.target import Target
from compilers.worker import import_tf, make_executor
from compilers.zoo import build_model
from lwm2m_server.logging import configure_logging

CLASSES = [
    Target(256 * 1024, 1 << 20, fpu=True),  # Cortex-M4F
    Target(128 * 1024, 512 * 1024, fpu=False),  # Cortex-M0+
    Target(64 * 1024, 256 * 1024, fpu=False),
    Target(512 * 1024, 2 << 20, fpu=True, accelerator="ethos-u55-128"),
    Target(1 << 20, 4 << 20, fpu=True, accelerator="ethos-u65-256"),
]
NPU = CLASSES[3]


def _warm_worker() -> float:
    t0 = time.perf_counter()
    import_tf()
    return time.perf_counter() - t0


async def fleet(name: str, root: Path, devices: int, epochs: int) -> tuple[float, int, int, int]:
    svc = CompileService(root / "fleet-cache", workers=2, zoo_epochs=epochs)
    svc.cache.root.joinpath("zoo").symlink_to(root / "cache" / "zoo")  # reuse the trained model
    targets = [CLASSES[i % len(CLASSES)] for i in range(devices)]
    t0 = time.perf_counter()
    reports = await svc.plan_fleet(name, targets)
    elapsed = time.perf_counter() - t0
    await svc.close()
    assert len(reports) == devices
    return elapsed, svc.plans, svc.runner.compiles, len({r.target.key() for r in reports})


def bench_model(name: str, epochs: int, devices: int, root: Path) -> None:
    cache = CompileCache(root / "cache")
    print(f"\n== {name} (epochs {epochs}) ==")
    with make_executor(1) as pool:
        tf_import = pool.submit(_warm_worker).result()
        t0 = time.perf_counter()
        zm = build_model(name, cache.root / "zoo", epochs=epochs, executor=pool)
        train_s = time.perf_counter() - t0
        runner = CompileRunner(cache, lambda: pool)
        t0 = time.perf_counter()
        cold = plan(zm.source(), NPU, cache=cache, runner=runner)
        cold_s = time.perf_counter() - t0
    print(
        f"worker TensorFlow import {tf_import:.2f} s; training {train_s:.2f} s; float Keras score {zm.float_score:.4f}"
    )
    print(f"{'variant':<15} {'cold s':>7} {'size B':>8} {'deflate B':>9} {'arena B':>8} {'accuracy':>9} {'lat us':>7}")
    for v in cold.variants:
        art = v.artifact
        assert art is not None
        lat = "-" if v.latency_us is None else f"{v.latency_us:.1f}"
        acc = "-" if v.accuracy is None else f"{v.accuracy:.4f}"
        print(
            f"{v.variant:<15} {art.notes.get('compile_s', 0):>7.2f} {v.size:>8,} {v.compressed_size:>9,} "
            f"{v.arena_bytes:>8,} {acc:>9} {lat:>7}"
        )
    print(f"cold plan (all variants, {runner.compiles} compile jobs, TF already imported): {cold_s:.2f} s")

    warm_runner = CompileRunner(cache, lambda: make_executor(1))
    t0 = time.perf_counter()
    warm = plan(zm.source(), NPU, cache=cache, runner=warm_runner)
    warm_s = time.perf_counter() - t0
    assert warm_runner.compiles == 0 and warm.chosen == cold.chosen
    print(f"warm cache hit: {warm_s * 1000:.1f} ms (warm/cold = {warm_s / cold_s:.5f}, {cold_s / warm_s:,.0f}x faster)")

    f32, i8 = cold.variant("float32").accuracy, cold.variant("int8").accuracy
    if f32 is not None and i8 is not None:
        print(
            f"int8 vs float32 on held-out data (TFLite Micro): {i8:.4f} vs {f32:.4f} ({(i8 - f32) * 100:+.2f} points)"
        )

    fleet_s, plans, compiles, classes = asyncio.run(fleet(name, root, devices, epochs))
    naive_jobs = sum(2 if t.accelerator != "none" else 1 for t in (CLASSES[i % 5] for i in range(devices)))
    print(
        f"fleet: {devices:,} devices, {classes} compile classes -> {plans} plans, {compiles} compile jobs "
        f"(naive per-device: {devices:,} plans, {naive_jobs:,} compile jobs; {naive_jobs / compiles:,.0f}x fewer) "
        f"in {fleet_s:.2f} s cold incl. worker start"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs-digits", type=int, default=30)
    ap.add_argument("--epochs-vibration", type=int, default=60)
    ap.add_argument("--devices", type=int, default=1000)
    args = ap.parse_args()
    configure_logging("warning")  # keep stdout for the figures
    print("cold s = one variant's compile in a warm worker (conversion + TFLM accuracy run + arena plan)")
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
        for name, epochs in (("digits-cnn", args.epochs_digits), ("vibration-anomaly", args.epochs_vibration)):
            bench_model(name, epochs, args.devices, Path(tmp) / name)


if __name__ == "__main__":
    main()
