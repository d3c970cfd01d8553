"""Worker-side helpers for tests (importable by spawned processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def train_twice_weights_equal(root: str, seed_a: int, seed_b: int) -> tuple[bool, bool]:
    """Train digits-cnn three times (seed_a twice, seed_b once) with tiny epochs; (a == a', a == b)."""
    from compilers.worker import import_tf
    from compilers.zoo import train_into

    tf = import_tf()
    weights = []
    for i, seed in enumerate((seed_a, seed_a, seed_b)):
        path = Path(root) / f"run{i}"
        train_into("digits-cnn", path, seed, 1)
        weights.append(tf.keras.models.load_model(str(path / "model.keras"), compile=False).get_weights())

    def same(x: list[np.ndarray], y: list[np.ndarray]) -> bool:
        return all(np.array_equal(a, b) for a, b in zip(x, y, strict=True))

    return same(weights[0], weights[1]), same(weights[0], weights[2])


def bad_quantizations(keras_path: str, rep: np.ndarray) -> dict[str, bytes]:
    """Convert with dynamic-range and float16 quantization: exactly what must never reach a device."""
    from compilers.worker import import_tf

    tf = import_tf()
    model = tf.keras.models.load_model(keras_path, compile=False)
    out = {}
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    out["dynamic-range"] = bytes(conv.convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    out["float16"] = bytes(conv.convert())
    return out


class CopyBackend:
    """A third backend defined outside ``compilers/``: re-emits the int8 build for a custom runtime.

    It exists to show that registering a backend needs no edit anywhere else.
    """

    name = "int8-copy"
    version = "1"
    order = 30

    def applies(self, source: object, target: object) -> bool:
        return getattr(target, "runtime", "") == "tflm-test"

    def target_key(self, target: object) -> str:
        return "any"

    def compile(self, source: object, target: object, prior: list[object]) -> list[object]:
        from compilers.base import finish_artifact

        base = next(a for a in prior if getattr(a, "variant", "") == "int8")
        return [finish_artifact("int8-copy", self.name, base.data, accuracy=base.accuracy)]  # type: ignore[attr-defined]


def register_test_backend() -> None:
    from compilers.registry import register

    register(CopyBackend)


register_test_backend()


def export_other_formats(keras_path: str, out_dir: str) -> tuple[str, str]:
    """The zoo model as a SavedModel directory and as a float32 .tflite (other accepted inputs)."""
    from compilers.worker import import_tf

    tf = import_tf()
    model = tf.keras.models.load_model(keras_path, compile=False)
    saved = str(Path(out_dir) / "saved_model")
    model.save(saved, save_format="tf")
    f32 = Path(out_dir) / "model_f32.tflite"
    f32.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return saved, str(f32)
