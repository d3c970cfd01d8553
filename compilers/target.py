"""What the compiler needs from a device: memory budgets, FPU, accelerator, runtime and op set.

Devices that map to the same :class:`Target` form a *compile class*: one compile serves them all.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from compilers.sizes import format_bytes, parse_size

__all__ = ["ACCELERATORS", "Target", "format_bytes", "parse_size", "pointer_size_for_cpu"]

ACCELERATORS = (
    "none",
    "ethos-u55-32",
    "ethos-u55-64",
    "ethos-u55-128",
    "ethos-u55-256",
    "ethos-u65-256",
    "ethos-u65-512",
)

_CPU_32BIT = re.compile(r"^(cortex-m|cortex-r|rv32|riscv32|xtensa|esp32|arc|armv[4-7])", re.IGNORECASE)
_CPU_64BIT = re.compile(r"^(x86[-_]64|amd64|aarch64|arm64|cortex-a(5[3-9]|7\d)|rv64|riscv64|host)", re.IGNORECASE)


def pointer_size_for_cpu(cpu: str) -> int:
    """4 for 32-bit MCU cores (Cortex-M/R, RISC-V rv32, Xtensa/ESP32, ARC), 8 for 64-bit ones
    (x86-64, AArch64, rv64); ``ValueError`` for a core we cannot place."""
    if _CPU_32BIT.match(cpu.strip()):
        return 4
    if _CPU_64BIT.match(cpu.strip()):
        return 8
    raise ValueError(f"cannot tell the pointer size of CPU {cpu!r}: give --pointer-size 4 or 8")



@dataclass(frozen=True)
class Target:
    """A compile class. ``ops=None`` means any op TFLM supports."""

    ram_bytes: int
    flash_bytes: int
    fpu: bool = True
    accelerator: str = "none"
    runtime: str = "tflm"
    ops: frozenset[str] | None = None
    pointer_size: int = 8  # 8: the 64-bit host runtime (exact); 4: a 32-bit MCU (see pointer_size_for_cpu)

    def __post_init__(self) -> None:
        if self.pointer_size not in (4, 8):
            raise ValueError(f"pointer size must be 4 (32-bit MCU) or 8 (64-bit host), not {self.pointer_size}")
        if self.ram_bytes < 0 or self.flash_bytes < 0:
            raise ValueError("ram_bytes and flash_bytes must be >= 0")
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"unknown accelerator {self.accelerator!r}; known: {', '.join(ACCELERATORS)}")
        if self.ops is not None and not isinstance(self.ops, frozenset):
            object.__setattr__(self, "ops", frozenset(self.ops))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ops"] = sorted(self.ops) if self.ops is not None else None
        if self.pointer_size == 8:  # the default stays out: compile-class keys and manifests are unchanged
            del data["pointer_size"]
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
            pointer_size=int(data.get("pointer_size", 8)),
        )

    def key(self) -> str:
        """Stable content hash of the target: the compile-class id."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
