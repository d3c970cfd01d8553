"""The ``Compiler`` protocol, the model source every backend reads, and the shared artifact finisher."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from compilers.artifact import Artifact, compressed_size
from compilers.tflite_info import ModelKindError, inspect_tflite

if TYPE_CHECKING:
    import numpy as np

    from compilers.target import Target

Task = Literal["classification", "autoencoder"]
SourceKind = Literal["keras", "savedmodel", "tflite"]


class CompileError(RuntimeError):
    """A backend could not produce a variant; the message says why (shown in the fit report)."""


@dataclass
class ModelSource:
    """A model plus the data that makes compiles honest: representative (quantization) and held-out (accuracy).

    ``train_x``/``train_y`` are used only for the short fine-tune after pruning; without them the pruned model is
    fine-tuned to reproduce the float model's own outputs on the representative data.
    """

    path: Path
    name: str = ""
    task: Task | None = None
    representative: np.ndarray | None = None
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    train_x: np.ndarray | None = None
    train_y: np.ndarray | None = None
    fine_tune_epochs: int = 2
    accuracy_margin: float = 1.0  # points; int8 losing more than this vs float32 also gets a 16x8 build
    _hash: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.name:
            self.name = self.path.stem

    @property
    def kind(self) -> SourceKind:
        if self.path.is_dir():
            return "savedmodel"
        if self.path.suffix == ".keras":
            return "keras"
        if self.path.suffix == ".tflite":
            return "tflite"
        raise CompileError(f"unsupported model file {self.path}: expected .keras, .tflite or a SavedModel dir")

    def content_hash(self) -> str:
        """sha256 over the model bytes (every file of a SavedModel dir) and every data array given."""
        if self._hash is not None:
            return self._hash
        h = hashlib.sha256()
        files = sorted(p for p in self.path.rglob("*") if p.is_file()) if self.path.is_dir() else [self.path]
        for f in files:
            h.update(str(f.relative_to(self.path) if self.path.is_dir() else f.name).encode())
            h.update(f.read_bytes())
        h.update(f"{self.task}|{self.fine_tune_epochs}|{self.accuracy_margin:g}".encode())
        for arr in (self.representative, self.val_x, self.val_y, self.train_x, self.train_y):
            if arr is None:
                h.update(b"-")
            else:
                h.update(f"{arr.dtype}{arr.shape}".encode())
                h.update(arr.tobytes())
        self._hash = h.hexdigest()
        return self._hash


@runtime_checkable
class Compiler(Protocol):
    """A backend. ``compile`` runs in a worker process and may import TensorFlow/Vela inside it.

    Backends run in ascending ``order``; each sees the artifacts of the ones before it (``prior``), so a
    post-processor such as Vela can take the int8 build as its input.
    """

    name: str
    version: str
    order: int

    def applies(self, source: ModelSource, target: Target) -> bool: ...

    def target_key(self, target: Target) -> str:
        """The part of the target this backend's output depends on (its compile-cache key component)."""
        ...

    def compile(self, source: ModelSource, target: Target, prior: Sequence[Artifact]) -> list[Artifact]: ...


def finish_artifact(
    variant: str,
    backend: str,
    data: bytes,
    *,
    accuracy: float | None = None,
    latency_us: float | None = None,
    notes: Mapping[str, Any] | None = None,
    expect: str | None = None,
) -> Artifact:
    """Measure size, compressed size, ops, I/O specs and the TFLM arena of a flatbuffer.

    ``expect`` ("int8"/"float32"/"int16x8") asserts the numeric kind. A model that is not plain int8 or
    float32 (16x8, hybrid, int16/int32 I/O...) is first offered to the real TFLite Micro runtime: if
    it refuses, :class:`ModelKindError` carries the runtime's own reason.
    """
    from compilers.arena import plan_arena
    from compilers.tflm_probe import runtime_refusal

    info = inspect_tflite(data)
    kind = info.kind  # raises ModelKindError for float16
    if expect is not None and kind != expect:
        raise CompileError(f"{variant}: expected a {expect} model, got {kind}")
    plain = kind in ("int8", "float32") and {info.input_spec.dtype, info.output_spec.dtype} == {kind}
    if not plain and "ethos-u" not in info.ops:  # the host runtime has no NPU kernel to ask
        refusal = runtime_refusal(data)
        if refusal is not None:
            raise ModelKindError(f"TFLite Micro refuses this {kind} model: {refusal}")
    arena = plan_arena(data)
    return Artifact(
        variant=variant,
        backend=backend,
        data=data,
        size=len(data),
        compressed_size=compressed_size(data),
        arena_bytes=arena.total_bytes,
        ops=info.ops,
        latency_us=latency_us,
        accuracy=accuracy,
        input_spec=info.input_spec,
        output_spec=info.output_spec,
        notes={
            "arena_head_bytes": arena.head_bytes,
            "arena_tail_bytes": arena.tail_bytes,
            "arena_bytes_ptr4": plan_arena(data, 4).total_bytes,  # the same graph on a 32-bit MCU
            "numeric": kind,
            "float_math": info.float_math,
            **(notes or {}),
        },
    )
