"""Arena planner against the real TFLite Micro runtime on small models built here with TensorFlow
(int8 with a representative dataset, and float32): conv, depthwise, pooling, dense, softmax,
add, concatenation, mean, transpose conv."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from compilers.arena import plan_arena
from compilers.tflite_schema import parse_model
from compilers.tflm_probe import TflmProbe

pytestmark = pytest.mark.slow


def _cnn(tf: Any) -> Any:
    layers = tf.keras.layers
    inp = tf.keras.Input((16, 16, 1), batch_size=1)
    x = layers.Conv2D(8, 3, activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(10)(x)
    return tf.keras.Model(inp, layers.Softmax()(x))


def _branchy(tf: Any) -> Any:
    layers = tf.keras.layers
    inp = tf.keras.Input((8, 8, 4), batch_size=1)
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = layers.Add()([inp, a])
    c = layers.Concatenate()([a, b])
    up = layers.Conv2DTranspose(4, 3, strides=2, padding="same")(c)
    x = layers.GlobalAveragePooling2D()(up)
    return tf.keras.Model(inp, layers.Dense(3)(x))


BUILDERS: dict[str, Callable[[Any], Any]] = {"cnn": _cnn, "branchy": _branchy}


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(7)
    out: dict[str, bytes] = {}
    for name, build in BUILDERS.items():
        keras_model = build(tf)
        shape = tuple(int(d) for d in keras_model.input_shape[1:])
        rng = np.random.default_rng(0)

        def rep(shape: tuple[int, ...] = shape, rng: np.random.Generator = rng) -> Iterator[list[np.ndarray]]:
            for _ in range(8):
                yield [rng.random((1, *shape), dtype=np.float32)]

        out[f"{name}-float32"] = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
        conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        out[f"{name}-int8"] = conv.convert()
    return out


@pytest.fixture(scope="module")
def probe() -> Iterator[TflmProbe]:
    with TflmProbe() as p:
        yield p


@pytest.mark.parametrize("name", ["cnn-float32", "cnn-int8", "branchy-float32", "branchy-int8"])
def test_small_tf_models_match_tflm(name: str, models: dict[str, bytes], probe: TflmProbe) -> None:
    data = models[name]
    plan = plan_arena(data)
    measured = probe.measure(data)
    assert plan.head_bytes == measured.head_bytes
    assert plan.tail_bytes == measured.tail_bytes
    assert abs(plan.total_bytes - measured.min_arena_bytes) <= 0.01 * measured.min_arena_bytes
    assert probe.accepts(data, plan.total_bytes)


def test_ops_are_the_ones_meant(models: dict[str, bytes]) -> None:
    ops = {op.opcode for m in models.values() for op in parse_model(m).main.operators}
    wanted = {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"}
    assert wanted | {"ADD", "CONCATENATION", "TRANSPOSE_CONV", "MEAN"} <= ops
    int8 = plan_arena(models["branchy-int8"])
    assert any(b.kind == "scratch" for b in int8.buffers)  # transpose conv / mean scratch is planned
