"""Models equivalent to the tflite-micro repository's examples, built here with the real TF converter.

The tflite-micro repository's own ``.tflite`` files cannot be downloaded on this machine (no network
beyond package registries), so each example is rebuilt with the same architecture and quantization
scheme: hello_world (sine MLP: float32, int8, 16x8), micro_speech (conv + dense on a 49x40
spectrogram, int8 and 16x8), an LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM, float32 and int8 with int16
internals: int16 cell state), batch matmul (attention-like x @ x^T, and x^T @ q whose operands the kernel
transposes into the arena; float32 and int8), int16 and int32 I/O, and a
hybrid (dynamic-range) model. A 16x8 LSTM is not built: this TF converter refuses it ("Quantization
to 16x8-bit not yet supported for op: 'UNIDIRECTIONAL_SEQUENCE_LSTM'"); tflite-micro makes its own with
its in-repo quantization tools. Weights are random (seeded): arena planning does not depend on them.

``build_all(cache_dir)`` writes ``NAME.tflite`` files once (keyed by this file's content) and returns
their paths, so the TensorFlow work runs once per machine, not once per test session.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

Builder = Callable[[Any], tuple[Any, str]]  # tf -> (keras model, quantization)


def _sine(tf: Any) -> Any:
    layers = tf.keras.layers
    inp = tf.keras.Input((1,), batch_size=1)
    x = layers.Dense(16, activation="relu")(inp)
    x = layers.Dense(16, activation="relu")(x)
    return tf.keras.Model(inp, layers.Dense(1)(x))


def _speech(tf: Any) -> Any:
    layers = tf.keras.layers
    inp = tf.keras.Input((49, 40, 1), batch_size=1)
    x = layers.DepthwiseConv2D((10, 8), strides=2, padding="same", activation="relu")(inp)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(4)(x)
    return tf.keras.Model(inp, layers.Softmax()(x))


def _lstm(tf: Any) -> Any:
    layers = tf.keras.layers
    inp = tf.keras.Input((28, 8), batch_size=1)
    x = layers.LSTM(16)(inp)
    return tf.keras.Model(inp, layers.Dense(4)(x))


def _matmul(tf: Any) -> Any:
    layers = tf.keras.layers
    inp = tf.keras.Input((6, 8), batch_size=1)
    q = layers.Dense(8)(inp)
    scores = layers.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True))([q, inp])
    x = layers.Flatten()(layers.Softmax()(scores))
    return tf.keras.Model(inp, layers.Dense(3)(x))


def _matmul_adj_x(tf: Any) -> Any:
    """x^T @ q: adj_x set and adj_y clear, so the kernel keeps transposed copies of both operands."""
    layers = tf.keras.layers
    inp = tf.keras.Input((8, 6), batch_size=1)
    q = layers.Dense(4)(inp)
    scores = layers.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_a=True))([inp, q])
    return tf.keras.Model(inp, layers.Dense(3)(layers.Flatten()(scores)))


def _wide(tf: Any) -> Any:
    layers = tf.keras.layers
    inp = tf.keras.Input((32,), batch_size=1)
    x = layers.Dense(64, activation="relu")(inp)  # >= 1024 weights: the converter quantizes them
    return tf.keras.Model(inp, layers.Dense(32)(x))


def _embedding(tf: Any) -> Any:
    layers = tf.keras.layers
    inp = tf.keras.Input((10,), batch_size=1, dtype="int32")
    x = layers.Flatten()(layers.Embedding(32, 4)(inp))
    return tf.keras.Model(inp, layers.Dense(2)(x))


# name -> (builder, quantization): float32 | int8 | 16x8 | 16x8-io16 | hybrid
MODELS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "hello_world-float32": (_sine, "float32"),
    "hello_world-int8": (_sine, "int8"),
    "hello_world-16x8": (_sine, "16x8"),
    "hello_world-16x8-io16": (_sine, "16x8-io16"),
    "dense-hybrid": (_wide, "hybrid"),
    "micro_speech-int8": (_speech, "int8"),
    "micro_speech-16x8": (_speech, "16x8"),
    "lstm-float32": (_lstm, "float32"),
    "lstm-int8": (_lstm, "int8"),
    "batch_matmul-float32": (_matmul, "float32"),
    "batch_matmul-int8": (_matmul, "int8"),
    "batch_matmul-adjx-float32": (_matmul_adj_x, "float32"),
    "batch_matmul-adjx-int8": (_matmul_adj_x, "int8"),
    "embedding-io32-float32": (_embedding, "float32"),
}


def convert(tf: Any, model: Any, quant: str, seed: int = 0) -> bytes:
    """Convert with the quantization scheme TFLM examples use (representative data: seeded uniform)."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant == "float32":
        return bytes(conv.convert())
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "hybrid":
        return bytes(conv.convert())
    spec = model.inputs[0]
    shape = tuple(int(d) for d in spec.shape[1:])
    integer_input = spec.dtype.is_integer
    rng = np.random.default_rng(seed)

    def rep() -> Iterator[list[np.ndarray]]:
        for _ in range(16):
            if integer_input:
                yield [rng.integers(0, 32, (1, *shape)).astype(np.int32)]
            else:
                yield [rng.uniform(-1, 1, (1, *shape)).astype(np.float32)]

    conv.representative_dataset = rep
    if quant == "int8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = tf.int8
    else:
        ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        conv.target_spec.supported_ops = [ops]
        io = tf.int16 if quant == "16x8-io16" else tf.float32
    if not integer_input:
        conv.inference_input_type = io
    conv.inference_output_type = io
    return bytes(conv.convert())


def _fingerprint() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def build_all(cache_dir: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build (or reuse) every model; returns name -> .tflite path. Imports TensorFlow only if needed."""
    out_dir = Path(cache_dir) / f"tflm-models-{_fingerprint()}"
    wanted = names or list(MODELS)
    paths = {n: out_dir / f"{n}.tflite" for n in wanted}
    missing = [n for n, p in paths.items() if not p.exists()]
    if missing:
        from compilers.worker import import_tf

        tf = import_tf()  # legacy Keras (tf_keras), as the compiler uses

        out_dir.mkdir(parents=True, exist_ok=True)
        for name in missing:
            build, quant = MODELS[name]
            tf.keras.utils.set_random_seed(7)
            data = convert(tf, build(tf), quant)
            tmp = paths[name].with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(paths[name])
    return paths


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinymlaas"
