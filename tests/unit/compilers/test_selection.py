"""Fit selection on real compiled zoo variants against targets that fit everything, only int8, only Vela, nothing."""

from __future__ import annotations

import pytest

from compilers.artifact import Artifact
from compilers.planner import PlanOptions, select
from compilers.report import FitReport
from compilers.target import Target
from compilers.zoo import ZooModel

from .conftest import source_of

pytestmark = pytest.mark.slow
OPTS = PlanOptions()


def report(
    name: str, target: Target, zoo: dict[str, ZooModel], arts: dict[str, list[Artifact]], **kw: float
) -> FitReport:
    opts = PlanOptions(**kw) if kw else OPTS  # type: ignore[arg-type]
    relevant = [a for a in arts[name] if target.accelerator != "none" or a.backend != "vela"]
    return select(source_of(zoo[name]), target, relevant, opts)


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_target_that_fits_everything(
    name: str, zoo: dict[str, ZooModel], zoo_artifacts: dict[str, list[Artifact]]
) -> None:
    big = Target(ram_bytes=8 << 20, flash_bytes=64 << 20, fpu=True, accelerator="ethos-u55-128")
    rep = report(name, big, zoo, zoo_artifacts, accuracy_margin=100.0)
    assert all(v.fits and v.reason == "fits" for v in rep.variants)
    chosen = rep.chosen_fit
    assert chosen is not None
    npu = [v for v in rep.variants if v.backend == "vela"]
    pool = npu or rep.variants  # NPU builds first on an accelerator target, then the smallest delivery
    smallest = min(v.flash_bytes for v in pool)
    assert chosen.flash_bytes == smallest
    best_acc = max(round(v.accuracy or 0, 4) for v in pool if v.flash_bytes == smallest)
    assert round(chosen.accuracy or 0, 4) == best_acc
    assert "the smallest delivery wins" in rep.summary and "NPU builds first" in rep.summary


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_within_the_margin_the_smaller_delivery_wins(
    name: str, zoo: dict[str, ZooModel], zoo_artifacts: dict[str, list[Artifact]]
) -> None:
    """On an FPU device the float32 build fits but its package is about twice the int8 one: the small one ships."""
    m4f = Target(ram_bytes=8 << 20, flash_bytes=64 << 20, fpu=True)
    rep = report(name, m4f, zoo, zoo_artifacts, accuracy_margin=100.0)
    f32 = rep.variant("float32")
    assert f32.fits and rep.chosen != "float32"
    chosen = rep.chosen_fit
    assert chosen is not None and chosen.flash_bytes == min(v.flash_bytes for v in rep.variants)
    assert chosen.flash_bytes < f32.flash_bytes and chosen.size * 1.5 < f32.size
    delivered = chosen.flash_bytes - OPTS.flash_margin_bytes
    assert f"{delivered:,} B to deliver" in rep.summary
    assert "rule: within 100 points of float32 the smallest delivery wins, then the most accurate" in rep.summary
    strict = report(name, m4f, zoo, zoo_artifacts, accuracy_margin=0.0)  # nothing may lose a point: float32 or lossless
    for v in strict.variants:
        if v.fits and v.variant != "float32":
            assert (v.accuracy or 0) >= (f32.accuracy or 0)


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_accuracy_margin_rejects_lossy_variants(
    name: str, zoo: dict[str, ZooModel], zoo_artifacts: dict[str, list[Artifact]]
) -> None:
    big = Target(ram_bytes=8 << 20, flash_bytes=64 << 20, fpu=True)
    rep = report(name, big, zoo, zoo_artifacts)
    float_acc = rep.variant("float32").accuracy
    assert float_acc is not None
    for v in rep.variants:
        loss = (float_acc - (v.accuracy or 0)) * 100
        assert v.fits == (loss <= 1.0 or v.variant == "float32"), (v.variant, loss, v.reason)
        if not v.fits:
            assert f"loses {loss:.1f} points vs float32" in v.reason


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_no_fpu_leaves_only_int8(name: str, zoo: dict[str, ZooModel], zoo_artifacts: dict[str, list[Artifact]]) -> None:
    m0 = Target(ram_bytes=128 * 1024, flash_bytes=512 * 1024, fpu=False)
    rep = report(name, m0, zoo, zoo_artifacts, accuracy_margin=100.0)
    assert rep.variant("float32").fits is False and "needs an FPU" in rep.variant("float32").reason
    assert "int8-vela" not in {v.variant for v in rep.variants}
    assert rep.chosen is not None and rep.chosen.startswith("int8")
    assert all(v.fits for v in rep.variants if v.variant != "float32")


def test_target_where_only_vela_fits(zoo: dict[str, ZooModel], zoo_artifacts: dict[str, list[Artifact]]) -> None:
    """Vela's output of the autoencoder is smaller than the CPU build: a flash budget between the two."""
    name = "vibration-anomaly"
    probe = report(name, Target(8 << 20, 64 << 20, accelerator="ethos-u55-128"), zoo, zoo_artifacts)
    vela = probe.variant("int8-vela")
    others = [v for v in probe.variants if v.variant != "int8-vela"]
    assert vela.flash_bytes < min(v.flash_bytes for v in others), "precondition: Vela build is the smallest"
    tight = Target(ram_bytes=8 << 20, flash_bytes=vela.flash_bytes, fpu=True, accelerator="ethos-u55-128")
    rep = report(name, tight, zoo, zoo_artifacts, accuracy_margin=100.0)
    assert rep.chosen == "int8-vela"
    assert [v.variant for v in rep.variants if v.fits] == ["int8-vela"]
    for v in others:
        assert f"flash, device has {tight.flash_bytes:,} B" in rep.variant(v.variant).reason


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_nothing_fits_says_what_is_needed(
    name: str, zoo: dict[str, ZooModel], zoo_artifacts: dict[str, list[Artifact]]
) -> None:
    tiny = Target(ram_bytes=1024, flash_bytes=1 << 20, fpu=False)
    rep = report(name, tiny, zoo, zoo_artifacts)
    assert rep.chosen is None and rep.chosen_artifact is None
    assert not any(v.fits for v in rep.variants)
    need = min(v.ram_bytes for v in rep.variants if v.variant != "float32")
    assert f"needs {need:,} B RAM, device has 1,024 B" in rep.summary
    assert rep.summary.startswith("nothing fits")
    doc = rep.to_json()
    assert doc["chosen"] is None and len(doc["variants"]) == len(rep.variants) >= 4


def test_op_set_and_npu_clock(zoo: dict[str, ZooModel], zoo_artifacts: dict[str, list[Artifact]]) -> None:
    name = "digits-cnn"
    int8_ops = set(next(a for a in zoo_artifacts[name] if a.variant == "int8").ops)
    assert "SOFTMAX" in int8_ops
    no_softmax = Target(1 << 20, 4 << 20, ops=frozenset(int8_ops - {"SOFTMAX"}), accelerator="ethos-u55-128")
    rep = report(name, no_softmax, zoo, zoo_artifacts, accuracy_margin=100.0, clock_mhz=100.0)
    for v in rep.variants:
        if v.backend == "vela":  # everything runs inside the ethos-u op on an NPU device
            assert v.fits, v.reason
            cycles = v.artifact.notes["vela"]["cycles"]  # type: ignore[union-attr]
            assert v.latency_us == pytest.approx(cycles / 100.0)
        else:
            assert not v.fits and "ops not on device: SOFTMAX" in v.reason
    assert rep.chosen == "int8-vela"
