"""What the compiler needs from a device: memory budgets, FPU, accelerator, runtime and op set.

Devices that map to the same :class:`Target` form a *compile class*: one compile serves them all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from compilers.sizes import format_bytes, parse_size

__all__ = ["ACCELERATORS", "Target", "format_bytes", "parse_size"]

ACCELERATORS = (
    "none",
    "ethos-u55-32",
    "ethos-u55-64",
    "ethos-u55-128",
    "ethos-u55-256",
    "ethos-u65-256",
    "ethos-u65-512",
)


@dataclass(frozen=True)
class Target:
    """A compile class. ``ops=None`` means any op TFLM supports."""

    ram_bytes: int
    flash_bytes: int
    fpu: bool = True
    accelerator: str = "none"
    runtime: str = "tflm"
    ops: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.ram_bytes < 0 or self.flash_bytes < 0:
            raise ValueError("ram_bytes and flash_bytes must be >= 0")
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"unknown accelerator {self.accelerator!r}; known: {', '.join(ACCELERATORS)}")
        if self.ops is not None and not isinstance(self.ops, frozenset):
            object.__setattr__(self, "ops", frozenset(self.ops))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ops"] = sorted(self.ops) if self.ops is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        ops = data.get("ops")
        return cls(
            ram_bytes=int(data["ram_bytes"]),
            flash_bytes=int(data["flash_bytes"]),
            fpu=bool(data.get("fpu", True)),
            accelerator=str(data.get("accelerator", "none")),
            runtime=str(data.get("runtime", "tflm")),
            ops=frozenset(ops) if ops is not None else None,
        )

    def key(self) -> str:
        """Stable content hash of the target: the compile-class id."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
