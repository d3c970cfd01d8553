"""Real compiles of the zoo (tiny epochs) in spawned workers: variants, kinds, Vela, pruning, reproducibility."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from compilers.artifact import Artifact
from compilers.base import finish_artifact
from compilers.evaluate import run_tflm
from compilers.planner import CompileRunner, load_data, plan, resolve_source
from compilers.target import Target
from compilers.tflite_info import ModelKindError, inspect_tflite
from compilers.zoo import ZooModel

from . import _helpers
from .conftest import MLPERF, NPU, source_of

pytestmark = pytest.mark.slow

EXPECTED = {"float32", "int8", "int8-pruned50", "int8-pruned80", "int8-vela"}


def by_variant(arts: list[Artifact]) -> dict[str, Artifact]:
    return {a.variant: a for a in arts}


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_every_variant_built_with_declared_kind(name: str, zoo_artifacts: dict[str, list[Artifact]]) -> None:
    arts = by_variant(zoo_artifacts[name])
    assert EXPECTED <= set(arts) <= EXPECTED | {"int16x8"}
    for variant, art in arts.items():
        assert "error" not in art.notes, art.notes
        info = inspect_tflite(art.data)
        assert info.kind == (variant if variant in ("float32", "int16x8") else "int8")
        assert art.notes["numeric"] == info.kind and art.notes["float_math"] == (variant == "float32")
        assert art.size == len(art.data) and 0 < art.compressed_size < art.size
        assert art.arena_bytes >= art.notes["arena_head_bytes"] + art.notes["arena_tail_bytes"] > 0  # + init peaks
        assert art.input_spec.shape[0] == 1  # exported from a batch-size-1 copy
        assert art.accuracy is not None and 0.5 < art.accuracy <= 1.0


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_int8_is_int8_in_and_out_on_tflm(
    name: str, zoo_artifacts: dict[str, list[Artifact]], zoo: dict[str, ZooModel]
) -> None:
    from tflite_micro.python.tflite_micro import runtime

    art = by_variant(zoo_artifacts[name])["int8"]
    assert art.input_spec.dtype == art.output_spec.dtype == "int8"
    info = inspect_tflite(art.data)
    assert info.activation_dtypes <= {"int8", "int32"} and "float32" not in info.constant_dtypes
    interp = runtime.Interpreter.from_bytes(art.data, arena_size=art.arena_bytes + 1024)
    assert interp.get_input_details(0)["dtype"] == np.int8
    assert interp.get_output_details(0)["dtype"] == np.int8
    out = run_tflm(art.data, zoo[name].val_x[:4])
    assert out.shape[0] == 4 and np.all(np.isfinite(out))


def test_dynamic_range_and_float16_are_rejected(
    zoo: dict[str, ZooModel], tmp_path: Path, runner: CompileRunner
) -> None:
    """float16 is refused from the flatbuffer; a hybrid (dynamic-range) model is refused by the real
    runtime, whose own reason is quoted."""
    digits = zoo["digits-cnn"]
    bad = runner.executor().submit(_helpers.bad_quantizations, str(digits.keras_path), digits.representative).result()
    with pytest.raises(ModelKindError, match="float16"):
        inspect_tflite(bad["float16"]).kind  # noqa: B018
    assert inspect_tflite(bad["dynamic-range"]).kind == "hybrid"
    with pytest.raises(ModelKindError, match=r"TFLite Micro refuses this hybrid model: .*not supported"):
        finish_artifact("hybrid", "tflite", bad["dynamic-range"])
    for kind, data in bad.items():
        with pytest.raises(ModelKindError):
            finish_artifact(kind, "tflite", data)
        path = tmp_path / f"{kind}.tflite"
        path.write_bytes(data)
        with pytest.raises(ModelKindError):  # a .tflite input of that kind is refused, not planned
            plan(path, NPU, cache=runner.cache, runner=runner)


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_16x8_offered_exactly_when_int8_loses_more_than_the_margin(
    name: str, zoo_artifacts: dict[str, list[Artifact]]
) -> None:
    arts = by_variant(zoo_artifacts[name])
    loss = ((arts["float32"].accuracy or 0) - (arts["int8"].accuracy or 0)) * 100
    assert ("int16x8" in arts) == (loss > 1.0), loss


def test_16x8_build_is_int16_in_and_out_and_runs(zoo: dict[str, ZooModel], runner: CompileRunner) -> None:
    """A negative margin makes every int8 build "too lossy", so the 16x8 variant is always offered."""
    from tflite_micro.python.tflite_micro import runtime

    source = replace(source_of(zoo["digits-cnn"]), accuracy_margin=-100.0, _hash=None)
    arts = by_variant(runner.artifacts(source, Target(1 << 20, 4 << 20, fpu=False)))
    art = arts["int16x8"]
    assert "error" not in art.notes, art.notes
    assert art.input_spec.dtype == art.output_spec.dtype == "int16" and not art.notes["float_math"]
    info = inspect_tflite(art.data)
    assert info.kind == "int16x8" and "int8" in info.constant_dtypes and "float32" not in info.activation_dtypes
    interp = runtime.Interpreter.from_bytes(art.data, arena_size=art.arena_bytes)  # the planned arena suffices
    assert interp.get_input_details(0)["dtype"] == np.int16
    assert art.accuracy is not None and abs(art.accuracy - (arts["float32"].accuracy or 0)) < 0.05
    assert art.arena_bytes > arts["int8"].arena_bytes  # int16 activations take twice the bytes


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_vela_output_runs_on_the_npu(name: str, zoo_artifacts: dict[str, list[Artifact]]) -> None:
    vela = by_variant(zoo_artifacts[name])["int8-vela"]
    assert "ethos-u" in vela.ops and vela.notes["cpu_ops"] == []
    summary = vela.notes["vela"]
    assert summary["accelerator"] == "ethos-u55-128" and summary["cycles"] > 0 and summary["npu_op_count"] > 0
    assert vela.latency_us == pytest.approx(summary["cycles"] / (summary["core_clock_hz"] / 1e6))
    assert vela.accuracy == by_variant(zoo_artifacts[name])["int8"].accuracy


@pytest.mark.parametrize("name", ["digits-cnn", "vibration-anomaly"])
def test_pruning_shrinks_only_compressed_size(name: str, zoo_artifacts: dict[str, list[Artifact]]) -> None:
    arts = by_variant(zoo_artifacts[name])
    int8, p50, p80 = arts["int8"], arts["int8-pruned50"], arts["int8-pruned80"]
    assert p80.compressed_size < p50.compressed_size < int8.compressed_size
    assert abs(p50.size - int8.size) <= 64 and abs(p80.size - int8.size) <= 64  # zeros are still stored
    assert p50.notes["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert p80.notes["sparsity"] == pytest.approx(0.8, abs=0.02)


def test_zoo_is_reproducible_from_seed(tmp_path: Path, runner: CompileRunner) -> None:
    pool = runner.executor()
    same, cross = pool.submit(_helpers.train_twice_weights_equal, str(tmp_path), 7, 8).result()
    assert same, "same seed must give identical weights"
    assert not cross, "a different seed must give different weights"


def test_zoo_cache_reuses_trained_model(zoo: dict[str, ZooModel], compile_root: Path) -> None:
    from compilers.zoo import build_model

    again = build_model("digits-cnn", compile_root / "zoo", epochs=zoo["digits-cnn"].epochs)
    assert again.keras_path == zoo["digits-cnn"].keras_path
    assert np.array_equal(again.val_x, zoo["digits-cnn"].val_x)
    assert again.float_score == zoo["digits-cnn"].float_score


def test_savedmodel_and_float32_tflite_inputs(zoo: dict[str, ZooModel], tmp_path: Path, runner: CompileRunner) -> None:
    digits = zoo["digits-cnn"]
    saved, f32 = runner.executor().submit(_helpers.export_other_formats, str(digits.keras_path), str(tmp_path)).result()
    data = tmp_path / "data.npz"
    np.savez(data, representative=digits.representative, val_x=digits.val_x, val_y=digits.val_y, task="classification")
    target = Target(256 * 1024, 1 << 20)

    sm = plan(load_data(resolve_source(saved), data), target, cache=runner.cache, runner=runner)
    assert sm.variant("int8").fits and sm.variant("float32").accuracy is not None
    assert inspect_tflite(sm.variant("int8").artifact.data).kind == "int8"  # type: ignore[union-attr]
    assert sm.variant("int8-pruned50").artifact.notes["sparsity"] == pytest.approx(0.5, abs=0.02)  # type: ignore[union-attr]

    fl = plan(load_data(resolve_source(f32), data), target, cache=runner.cache, runner=runner)
    assert fl.variant("float32").fits and fl.chosen == "float32"
    assert not fl.variant("int8").fits and "cannot quantize a .tflite" in fl.variant("int8").reason


def test_load_data_rejects_bad_files(tmp_path: Path) -> None:
    kws = resolve_source(MLPERF / "kws_ref_model.tflite")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read data file"):
        load_data(kws, bad)
    odd = tmp_path / "odd.npz"
    np.savez(odd, weights=np.zeros(3))
    with pytest.raises(ValueError, match="unknown arrays"):
        load_data(kws, odd)
    ok = tmp_path / "ok.npz"
    np.savez(ok, val_x=np.zeros((2, 3)), val_y=np.zeros(2))
    with pytest.raises(ValueError, match="unknown task"):
        load_data(kws, ok, "regression")
    assert load_data(kws, ok, "classification").task == "classification"
