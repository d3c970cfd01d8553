"""Held-out accuracy measured by the real TFLite Micro interpreter (``tflite_micro``), no TensorFlow needed.

Classification -> top-1 accuracy; autoencoder -> ROC AUC of the reconstruction error (val_y: 1 = anomaly).
Both are fractions in [0, 1].
"""

from __future__ import annotations

import numpy as np

from compilers.artifact import TensorSpec
from compilers.tflite_info import inspect_tflite

_QUANTIZED: dict[str, np.iinfo[np.signedinteger]] = {"int8": np.iinfo(np.int8), "int16": np.iinfo(np.int16)}


def _quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.dtype not in _QUANTIZED or not spec.scale:
        return x.astype(np.dtype(spec.dtype) if spec.dtype in ("int32", "int64") else np.float32)
    kind = _QUANTIZED[spec.dtype]
    q = np.round(x / spec.scale) + spec.zero_point
    return np.clip(q, kind.min, kind.max).astype(kind.dtype)


def _dequantize(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.dtype not in _QUANTIZED or not spec.scale:
        return y.astype(np.float32)
    return (y.astype(np.float32) - spec.zero_point) * spec.scale


def run_tflm(data: bytes, x: np.ndarray, arena_size: int | None = None) -> np.ndarray:
    """Run every row of ``x`` (float, unbatched rows) through TFLM; returns dequantized float outputs."""
    from tflite_micro.python.tflite_micro import runtime

    info = inspect_tflite(data)
    interp = runtime.Interpreter.from_bytes(data, arena_size=arena_size or max(len(data) * 10, 1 << 20))
    in_shape = info.input_spec.shape
    outs = []
    for row in x:
        interp.set_input(_quantize(row.reshape(in_shape), info.input_spec), 0)
        interp.invoke()
        outs.append(_dequantize(np.asarray(interp.get_output(0)), info.output_spec).reshape(-1))
    return np.stack(outs)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney ROC AUC (ties count half); labels 1 = positive (anomalous)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("AUC needs both positive and negative samples")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def score(outputs: np.ndarray, x: np.ndarray, y: np.ndarray, task: str) -> float:
    if task == "classification":
        return float(np.mean(np.argmax(outputs, axis=1) == y.reshape(-1)))
    if task == "autoencoder":
        err = np.mean((outputs - x.reshape(len(x), -1)) ** 2, axis=1)
        return roc_auc(err, y)
    raise ValueError(f"unknown task {task!r}")


def evaluate_tflite(data: bytes, x: np.ndarray, y: np.ndarray, task: str) -> float:
    """Accuracy (or AUC) of a flatbuffer on held-out data, via TFLite Micro."""
    return score(run_tflm(data, x), x, y, task)
