"""One compiled model variant and the facts the fit check and the device need about it."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field
from typing import Any

VARIANTS = ("float32", "int8", "int16x8", "hybrid", "int8-pruned50", "int8-pruned80", "int8-vela")


def compressed_size(data: bytes) -> int:
    """Size after deflate (level 9): what pruning actually shrinks, and what delivery would send compressed."""
    return len(zlib.compress(data, 9))


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str  # "int8", "float32", ...
    scale: float = 0.0
    zero_point: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "scale": self.scale, "zero_point": self.zero_point}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(
            tuple(int(d) for d in data["shape"]), str(data["dtype"]), float(data["scale"]), int(data["zero_point"])
        )


@dataclass
class Artifact:
    """A candidate build. ``arena_bytes`` is the full TFLM arena (planned head + persistent tail)."""

    variant: str
    backend: str
    data: bytes
    size: int
    compressed_size: int
    arena_bytes: int
    ops: list[str]
    latency_us: float | None
    accuracy: float | None
    input_spec: TensorSpec
    output_spec: TensorSpec
    notes: dict[str, Any] = field(default_factory=dict)

    def arena_for(self, pointer_size: int) -> int:
        """The arena on a device with ``pointer_size``-byte pointers: the host figure for 8, the 32-bit
        derivation (``compilers.tflm_tail``) for 4."""
        if pointer_size == 8 or not self.data:
            return self.arena_bytes
        if pointer_size == 4 and "arena_bytes_ptr4" in self.notes:
            return int(self.notes["arena_bytes_ptr4"])
        from compilers.arena import plan_arena

        return plan_arena(self.data, pointer_size).total_bytes

    def to_dict(self, *, with_data: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "variant": self.variant,
            "backend": self.backend,
            "size": self.size,
            "compressed_size": self.compressed_size,
            "arena_bytes": self.arena_bytes,
            "ops": list(self.ops),
            "latency_us": self.latency_us,
            "accuracy": self.accuracy,
            "input_spec": self.input_spec.to_dict(),
            "output_spec": self.output_spec.to_dict(),
            "notes": dict(self.notes),
        }
        if with_data:
            out["data"] = base64.b64encode(self.data).decode()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], payload: bytes | None = None) -> Artifact:
        raw = payload if payload is not None else base64.b64decode(data["data"])
        return cls(
            variant=data["variant"],
            backend=data["backend"],
            data=raw,
            size=int(data["size"]),
            compressed_size=int(data["compressed_size"]),
            arena_bytes=int(data["arena_bytes"]),
            ops=list(data["ops"]),
            latency_us=data["latency_us"],
            accuracy=data["accuracy"],
            input_spec=TensorSpec.from_dict(data["input_spec"]),
            output_spec=TensorSpec.from_dict(data["output_spec"]),
            notes=dict(data.get("notes", {})),
        )
