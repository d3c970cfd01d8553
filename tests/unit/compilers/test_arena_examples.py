"""The planner against the real TFLite Micro runtime on equivalents of the tflite-micro examples
(tests/support/tflm_models.py, built once with the real TF converter and cached): 16x8, int16 and
int32 I/O, LSTM float32/int8, batch matmul, and a hybrid model the runtime refuses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compilers.arena import plan_arena
from compilers.base import finish_artifact
from compilers.tflite_info import ModelKindError, inspect_tflite
from compilers.tflm_probe import TflmProbe
from tests.support.tflm_models import MODELS, build_all

pytestmark = pytest.mark.slow

REFUSED = {"dense-hybrid"}
RUNS = sorted(set(MODELS) - REFUSED)


@pytest.fixture(scope="session")
def example_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Built in a spawned worker (TensorFlow with legacy Keras, whatever this process imported), once per
    checkout: the files are keyed by the builder's content in pytest's cache directory (without the cache plugin,
    ``-p no:cacheprovider``: once per run, in the run's temp dir)."""
    from compilers.worker import make_executor

    cache_plugin = request.config.cache if hasattr(request.config, "cache") else None  # absent: no:cacheprovider
    cache = Path(cache_plugin.mkdir("tflm-models")) if cache_plugin else tmp_path_factory.mktemp("tflm-models")
    with make_executor(1) as pool:
        paths = pool.submit(build_all, cache).result()
    return {name: path.read_bytes() for name, path in paths.items()}


@pytest.fixture(scope="module")
def probe() -> Iterator[TflmProbe]:
    with TflmProbe() as p:
        yield p


@pytest.mark.parametrize("name", RUNS)
def test_plan_matches_the_runtime(name: str, example_models: dict[str, bytes], probe: TflmProbe) -> None:
    data = example_models[name]
    plan = plan_arena(data)
    real = probe.measure(data)
    assert plan.head_bytes == real.head_bytes  # scratch buffers (LSTM gates...) planned as the runtime does
    assert plan.tail_bytes == real.tail_bytes  # persistent structs and kernel buffers, to the byte
    assert plan.unmodeled_ops == ()
    # Exact to the byte on every example, batch matmul (OpDataBatchMatmul + output dims copy) and the
    # GATHER embedding (no Init: the output dims copy happens in Prepare, after the other ops' OpData) included.
    assert plan.total_bytes == real.min_arena_bytes, (plan.total_bytes, real.min_arena_bytes)
    assert probe.accepts(data, plan.total_bytes)


@pytest.mark.parametrize(
    ("name", "kind", "float_math"),
    [
        ("hello_world-16x8", "int16x8", True),  # float I/O through QUANTIZE/DEQUANTIZE
        ("hello_world-16x8-io16", "int16x8", False),
        ("micro_speech-16x8", "int16x8", True),
        ("lstm-int8", "int8", False),  # int16 cell state inside an int8 model
        ("lstm-float32", "float32", True),
        ("embedding-io32-float32", "float32", True),  # int32 input
        ("dense-hybrid", "hybrid", True),
    ],
)
def test_numeric_kinds(name: str, kind: str, float_math: bool, example_models: dict[str, bytes]) -> None:
    info = inspect_tflite(example_models[name])
    assert (info.kind, info.float_math) == (kind, float_math)


def test_mixed_models_compile_and_the_hybrid_is_refused_with_the_runtime_reason(
    example_models: dict[str, bytes],
) -> None:
    art = finish_artifact("int16x8", "tflite", example_models["hello_world-16x8-io16"])
    assert art.input_spec.dtype == "int16" and art.arena_bytes == plan_arena(art.data).total_bytes
    assert art.notes["arena_bytes_ptr4"] < art.arena_bytes  # 4-byte pointers: a smaller tail
    lstm = finish_artifact("int8", "tflite", example_models["lstm-int8"])
    assert any(b.kind == "scratch" for b in plan_arena(lstm.data).buffers)
    with pytest.raises(ModelKindError, match="FLOAT32 with filter type: INT8 not supported"):
        finish_artifact("hybrid", "tflite", example_models["dense-hybrid"])


def test_32bit_tail_is_smaller_and_the_head_is_the_same(example_models: dict[str, bytes]) -> None:
    for name in RUNS:
        host, mcu = plan_arena(example_models[name]), plan_arena(example_models[name], 4)
        assert mcu.head_bytes == host.head_bytes and 0 < mcu.tail_bytes < host.tail_bytes, name
    with pytest.raises(ValueError, match="pointer size must be 4"):
        plan_arena(example_models[RUNS[0]], 2)


def test_batch_matmul_and_gather_kernel_buffers_follow_the_kernel_source(
    example_models: dict[str, bytes], probe: TflmProbe
) -> None:
    """The runtime's "Persistent buffer data" (requested bytes, count) is the sum of our kernel buffers plus
    the two I/O pointer arrays: BATCH_MATMUL is OpDataBatchMatmul (32 B host, 16 B 32-bit), the int8
    quantization struct (28 B) and the rank-3 output dims (16 B); GATHER has no Init, only its dims copy."""
    from compilers.tflite_schema import parse_model
    from compilers.tflm_tail import MCU32_ABI, kernel_allocations

    lhs_t, rhs_t = [24, 16, 192], [24, 16, 128]  # TfLiteEvalTensor, rank-3 dims, data of the transposed copies
    cases = {
        "batch_matmul-float32": ((False, True), (32, [16])),  # x @ x^T: adj_y, no transposed copy
        "batch_matmul-int8": ((False, True), (32, [28, 16])),
        "batch_matmul-adjx-float32": ((True, False), (32, [*lhs_t, *rhs_t, 16])),  # both operands copied
        "batch_matmul-adjx-int8": ((True, False), (32, [28, 24, 16, 48, 24, 16, 32, 16])),
    }
    for name, (adjoint, bmm) in cases.items():
        model = parse_model(example_models[name])
        sg = model.main
        op = next(o for o in sg.operators if o.opcode == "BATCH_MATMUL")
        assert op.adjoint == adjoint
        assert kernel_allocations(sg, op) == bmm
        assert kernel_allocations(sg, op, MCU32_ABI)[0] == 16
        sizes = [s for o in sg.operators for s in (kernel_allocations(sg, o)[0], *kernel_allocations(sg, o)[1]) if s]
        sizes += [8 * len(sg.inputs), 8 * len(sg.outputs)]  # I/O TfLiteTensor pointer arrays
        used = probe.report(example_models[name], 1 << 20)[3]["Persistent buffer data"]
        assert (used.requested, used.count) == (sum(sizes), len(sizes)), name
    model = parse_model(example_models["embedding-io32-float32"])
    gather = next(o for o in model.main.operators if o.opcode == "GATHER")
    assert kernel_allocations(model.main, gather) == (0, [16])
