"""TensorFlow Lite converter backend: float32, full-integer int8, int8 after magnitude pruning (50 %, 80 %),
and 16x8 (int16 activations, int8 weights, int16 I/O) when int8 loses more than the source's accuracy margin.

Everything TensorFlow runs inside :meth:`TfliteCompiler.compile`, which is called in a worker process.
Pruning makes weights zero but keeps them stored, so it shrinks only the *compressed* (deflate) size,
i.e. what delivery sends, not the flash footprint or the arena.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from compilers.artifact import Artifact, TensorSpec
from compilers.base import CompileError, ModelSource, finish_artifact
from compilers.evaluate import evaluate_tflite
from compilers.registry import register
from compilers.tflite_info import ModelKindError, inspect_tflite

if TYPE_CHECKING:
    from compilers.target import Target

PRUNE_LEVELS = {"int8-pruned50": 0.5, "int8-pruned80": 0.8}
SEED = 1234


class _NotNeeded(Exception):
    """A conditional variant whose condition does not hold (not an error: it is simply not offered)."""


def failed(variant: str, backend: str, reason: str) -> Artifact:
    """A placeholder for a variant that could not be built; the fit report shows ``reason``."""
    empty = TensorSpec((), "")
    return Artifact(variant, backend, b"", 0, 0, 0, [], None, None, empty, empty, {"error": reason})


def _accuracy(data: bytes, source: ModelSource) -> float | None:
    if source.val_x is None or source.val_y is None or source.task is None:
        return None
    return evaluate_tflite(data, source.val_x, source.val_y, source.task)


def _load_keras(source: ModelSource) -> Any:
    from compilers.worker import import_tf

    tf = import_tf()
    try:
        return tf.keras.models.load_model(str(source.path), compile=False)
    except Exception as exc:
        if source.kind == "keras":
            raise CompileError(f"cannot load {source.path} with tf_keras: {exc}") from exc
        return None  # a plain SavedModel: convertible, not prunable


def _concrete_fn(model: Any, source: ModelSource) -> tuple[Any, Any]:
    """A batch-size-1 concrete function of the model (Keras model or SavedModel signature)."""
    from compilers.worker import import_tf

    tf = import_tf()
    if model is not None:
        shape = [1, *model.inputs[0].shape[1:]]
        fn = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)])
        return fn.get_concrete_function(), model
    loaded = tf.saved_model.load(str(source.path))
    sig = loaded.signatures["serving_default"]
    (name, spec), *_ = sig.structured_input_signature[1].items()
    shape = [1, *spec.shape[1:]]
    fn = tf.function(lambda x: sig(**{name: x}), input_signature=[tf.TensorSpec(shape, tf.float32)])
    return fn.get_concrete_function(), loaded


def _convert(concrete: Any, trackable: Any, rep: np.ndarray | None, scheme: str) -> bytes:
    """``scheme``: "float32", "int8" (full integer) or "int16x8" (int16 activations and I/O, int8 weights)."""
    from compilers.worker import import_tf

    tf = import_tf()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], trackable)
    if scheme != "float32":
        if rep is None:
            raise CompileError(f"{scheme} needs a representative dataset")
        samples = rep.astype(np.float32)

        def gen() -> Iterator[list[np.ndarray]]:
            for row in samples[:200]:
                yield [row[None, ...]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        if scheme == "int8":
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io = tf.int8
        else:
            ops16x8 = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            conv.target_spec.supported_ops = [ops16x8]
            io = tf.int16
        conv.inference_input_type = io
        conv.inference_output_type = io
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return bytes(conv.convert())


def _prune(model: Any, source: ModelSource, sparsity: float) -> tuple[Any, float]:
    """Magnitude-prune to ``sparsity`` with a short fine-tune, then strip the wrappers; returns (model, sparsity)."""
    import tensorflow_model_optimization as tfmot

    from compilers.worker import import_tf, seed_everything

    tf = import_tf()
    seed_everything(SEED)
    clone = tf.keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    if source.train_x is not None and source.train_y is not None and source.task == "classification":
        x, y = source.train_x, source.train_y
        loss: Any = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=False)
    else:  # fine-tune to reproduce the float model's outputs (works for any task)
        data = source.train_x if source.train_x is not None else source.representative
        if data is None:
            raise CompileError("pruning needs training or representative data")
        x, y = data, model.predict(data, verbose=0)
        loss = "mse"
    batch = 32
    steps = int(np.ceil(len(x) / batch)) * max(1, source.fine_tune_epochs)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=max(1, steps // 2), frequency=1
    )
    pruned = tfmot.sparsity.keras.prune_low_magnitude(clone, pruning_schedule=schedule)
    pruned.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=loss)
    pruned.fit(
        x,
        y,
        epochs=max(1, source.fine_tune_epochs),
        batch_size=batch,
        verbose=0,
        shuffle=True,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    kernels = [w for layer in stripped.layers for w in layer.get_weights() if w.ndim > 1]
    total = sum(k.size for k in kernels)
    zeros = sum(int(np.sum(k == 0)) for k in kernels)
    return stripped, (zeros / total if total else 0.0)


@register
class TfliteCompiler:
    name = "tflite"
    version = "2"
    order = 10

    def applies(self, source: ModelSource, target: Target) -> bool:
        return True

    def target_key(self, target: Target) -> str:
        return "any"  # the converter's output does not depend on the device; the planner filters

    def compile(self, source: ModelSource, target: Target, prior: Sequence[Artifact]) -> list[Artifact]:
        if source.kind == "tflite":
            return self._from_tflite(source)
        model = _load_keras(source)
        concrete, trackable = _concrete_fn(model, source)
        out: list[Artifact] = []
        rep = source.representative
        jobs: list[tuple[str, Callable[[], Artifact]]] = [
            ("float32", lambda: self._finish("float32", _convert(concrete, trackable, None, "float32"), source)),
            ("int8", lambda: self._finish("int8", _convert(concrete, trackable, rep, "int8"), source)),
            ("int16x8", lambda: self._finish("int16x8", self._int16x8(concrete, trackable, source, out), source)),
        ]
        for variant, level in PRUNE_LEVELS.items():
            jobs.append((variant, lambda v=variant, s=level: self._pruned(v, s, model, source)))  # type: ignore[misc]
        for variant, job in jobs:
            t0 = time.perf_counter()
            try:
                art = job()
            except _NotNeeded:
                continue
            except (CompileError, ModelKindError, ValueError) as exc:
                art = failed(variant, self.name, str(exc))
            except Exception as exc:  # a converter crash on one variant must not hide the others
                art = failed(variant, self.name, f"{type(exc).__name__}: {exc}")
            art.notes["compile_s"] = round(time.perf_counter() - t0, 3)
            out.append(art)
        return out

    def _int16x8(self, concrete: Any, trackable: Any, source: ModelSource, built: Sequence[Artifact]) -> bytes:
        """Offered only when int8 loses more than ``source.accuracy_margin`` points vs float32."""
        acc = {a.variant: a.accuracy for a in built}
        f32, i8 = acc.get("float32"), acc.get("int8")
        if f32 is None or i8 is None or (f32 - i8) * 100 <= source.accuracy_margin:
            raise _NotNeeded
        return _convert(concrete, trackable, source.representative, "int16x8")

    def _pruned(self, variant: str, sparsity: float, model: Any, source: ModelSource) -> Artifact:
        if model is None:
            raise CompileError("pruning needs a Keras model (this SavedModel has no Keras metadata)")
        stripped, achieved = _prune(model, source, sparsity)
        concrete, trackable = _concrete_fn(stripped, source)
        data = _convert(concrete, trackable, source.representative, "int8")
        return self._finish(variant, data, source, {"sparsity": round(achieved, 4)})

    def _finish(self, variant: str, data: bytes, source: ModelSource, notes: dict[str, Any] | None = None) -> Artifact:
        expect = variant if variant in ("float32", "int16x8") else "int8"
        return finish_artifact(variant, self.name, data, accuracy=_accuracy(data, source), notes=notes, expect=expect)

    def _from_tflite(self, source: ModelSource) -> list[Artifact]:
        data = source.path.read_bytes()
        kind = inspect_tflite(data).kind  # ModelKindError for float16
        if kind != "float32":  # int8, int16x8, hybrid: finish_artifact asks the runtime whether it runs it
            note = {"source": f"already {kind} .tflite: planned as is (no recompile without the float model)"}
            return [finish_artifact(kind, self.name, data, accuracy=_accuracy(data, source), notes=note)]
        note = {"source": "float32 .tflite: int8 needs the float Keras/SavedModel model"}
        return [
            finish_artifact("float32", self.name, data, accuracy=_accuracy(data, source), notes=note),
            failed("int8", self.name, "cannot quantize a .tflite; give the .keras or SavedModel"),
        ]
