"""Flatbuffer inspection on the third-party MLPerf Tiny models (no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compilers.tflite_info import inspect_tflite

from .conftest import MLPERF

MODELS = sorted(MLPERF.glob("*.tflite"))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_mlperf_models_are_full_int8(path: Path) -> None:
    info = inspect_tflite(path.read_bytes())
    assert info.kind == "int8"
    assert info.input_spec.dtype == info.output_spec.dtype == "int8"
    assert info.input_spec.shape[0] == 1 and info.input_spec.scale > 0
    assert "float32" not in info.activation_dtypes


def test_not_a_flatbuffer() -> None:
    with pytest.raises(ValueError, match="TFL3"):
        inspect_tflite(b"hello world, not a model")


def test_planner_import_keeps_tensorflow_out() -> None:
    code = (
        "import sys, compilers.planner, compilers.registry as r, lwm2m_server.cli.compile;"
        "r.backends();"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
