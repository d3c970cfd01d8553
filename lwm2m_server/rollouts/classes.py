"""Human names for compile classes: ``cortex-m4f-160k-512k-fpu`` beside the hash that stays the id.

A class is a :class:`compilers.target.Target` (RAM budget for ML, flash free for models, FPU, accelerator, op set);
the name spells those out, led by the CPU core of its devices (several cores of one target are joined by ``+``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from compilers.sizes import short_size

UNKNOWN = "hardware-unknown"


def class_name(target: Mapping[str, Any] | None, cpus: Iterable[str | None] = (), fallback: str = UNKNOWN) -> str:
    """``{cpu}-{ram for ML}-{flash for models}-{fpu|nofpu}[-{accelerator}][-{n}ops]``; ``fallback`` for a target
    that is not a compiler Target (never raises: a name must not break a rollout)."""
    if target is None:
        return UNKNOWN
    if not isinstance(target.get("ram_bytes"), int) or not isinstance(target.get("flash_bytes"), int):
        return fallback
    cores = sorted({c for c in cpus if c})
    parts = ["+".join(cores)] if cores else []
    parts += [short_size(int(target["ram_bytes"])), short_size(int(target["flash_bytes"])),
              "fpu" if target.get("fpu", True) else "nofpu"]  # fmt: skip
    accelerator = target.get("accelerator") or "none"
    if accelerator != "none":
        parts.append(str(accelerator))
    ops = target.get("ops")
    if ops:
        parts.append(f"{len(ops)}ops")
    return "-".join(parts)
