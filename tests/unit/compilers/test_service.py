"""Disk cache, compile classes and single-flight with the real worker pool."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from compilers.cache import CompileCache
from compilers.planner import CompileRunner, CompileService, plan
from compilers.target import Target
from compilers.worker import make_executor
from compilers.zoo import ZooModel

from .conftest import MLPERF, NPU, source_of

pytestmark = pytest.mark.slow


def test_warm_cache_is_a_hit(zoo: dict[str, ZooModel], zoo_artifacts: object, compile_root: Path) -> None:
    """The session fixture compiled already: a fresh runner on the same disk cache compiles nothing."""
    fresh = CompileRunner(CompileCache(compile_root / "cache"), lambda: make_executor(1))
    t0 = time.perf_counter()
    rep = plan(source_of(zoo["digits-cnn"]), NPU, cache=fresh.cache, runner=fresh)
    elapsed = time.perf_counter() - t0
    assert fresh.compiles == 0 and fresh.cache_hits == 2  # tflite + vela entries
    assert fresh._executor is None  # no worker was even started
    assert rep.chosen is not None and elapsed < 5.0


async def test_single_flight_and_compile_classes(tmp_path: Path) -> None:
    kws = MLPERF / "kws_ref_model.tflite"
    svc = CompileService(tmp_path / "cache", workers=1)
    try:
        a = Target(256 * 1024, 1 << 20, fpu=True)
        same_class = Target(256 * 1024, 1 << 20, fpu=True)
        reports = await asyncio.gather(svc.plan(kws, a), svc.plan(kws, same_class), svc.plan(kws, a))
        assert svc.plans == 1 and svc.runner.compiles == 1
        assert reports[0] is reports[1] is reports[2]
        # a 200-device fleet over 5 compile classes: 5 plans, and the device-independent build is reused
        classes = [Target(r * 1024, 1 << 20, fpu=f) for r, f in ((16, False), (32, False), (64, True), (128, True))]
        fleet = [([a, *classes])[i % 5] for i in range(200)]
        fleet_reports = await svc.plan_fleet(kws, fleet)
        assert len(fleet_reports) == 200 and svc.plans == 5 and svc.runner.compiles == 1
        assert {r.target.key() for r in fleet_reports} == {t.key() for t in [a, *classes]}
        assert fleet_reports[0].chosen == "int8" and fleet_reports[1].chosen is None  # 16 KiB is too small for KWS
    finally:
        await svc.close()


def test_third_backend_needs_no_edits(tmp_path: Path) -> None:
    from compilers.registry import backends

    from . import _helpers  # registers "int8-copy" on import (also in the worker, via its module name)

    assert "int8-copy" in {b.name for b in backends()}
    kws = MLPERF / "kws_ref_model.tflite"
    target = Target(256 * 1024, 1 << 20, runtime="tflm-test")
    rep = plan(kws, target, cache=CompileCache(tmp_path / "cache"))
    assert [v.variant for v in rep.variants] == ["int8", "int8-copy"]
    copy = rep.variant("int8-copy")
    assert copy.fits and copy.artifact is not None and copy.artifact.data == kws.read_bytes()
    assert _helpers.CopyBackend.name == copy.backend
