"""Wave specifications: how a rollout's devices are split into successive waves.

Accepted forms (``--waves``):

* ``10%,50%,100%`` — cumulative percentages of the targeted devices;
* ``5,20,100`` — cumulative device counts (devices past the last count form a final wave);
* ``equal:4`` — four waves of (nearly) equal size.

Canary devices, when given, form wave 0 ahead of all others.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass


class WaveSpecError(ValueError):
    """A wave specification that cannot be parsed."""


@dataclass(frozen=True)
class WaveSpec:
    kind: str  # "percent" | "count" | "equal"
    values: tuple[float, ...]

    def __str__(self) -> str:
        if self.kind == "equal":
            return f"equal:{int(self.values[0])}"
        suffix = "%" if self.kind == "percent" else ""
        return ",".join(f"{v:g}{suffix}" for v in self.values)


def parse_waves(text: str) -> WaveSpec:
    text = text.strip().replace(" ", "")
    if not text:
        return WaveSpec("percent", (100.0,))
    if text.startswith("equal:"):
        try:
            n = int(text.removeprefix("equal:"))
        except ValueError:
            raise WaveSpecError(f"bad wave count in {text!r}") from None
        if not 1 <= n <= 1000:
            raise WaveSpecError("equal:N needs 1 <= N <= 1000")
        return WaveSpec("equal", (float(n),))
    parts = text.split(",")
    if len(parts) > 100:
        raise WaveSpecError("at most 100 waves")
    percent = [p.endswith("%") for p in parts]
    if any(percent) and not all(percent):
        raise WaveSpecError("mix of percentages and counts; use one kind")
    try:
        values = tuple(float(p.rstrip("%")) for p in parts)
    except ValueError:
        raise WaveSpecError(f"bad wave list {text!r}; e.g. 10%,50%,100% or 5,20 or equal:4") from None
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise WaveSpecError("wave sizes must be positive")
    if any(b < a for a, b in itertools.pairwise(values)):
        raise WaveSpecError("wave sizes are cumulative and must not decrease")
    if all(percent):
        if values[-1] > 100:
            raise WaveSpecError("percentages above 100%")
        return WaveSpec("percent", values)
    if any(v != int(v) for v in values):
        raise WaveSpecError("device counts must be whole numbers")
    return WaveSpec("count", values)


def split_waves(devices: Sequence[str], spec: WaveSpec, canaries: Sequence[str] = ()) -> list[list[str]]:
    """Assign devices (in the given order) to waves; every device lands in exactly one wave.

    Empty waves are dropped. With percentages ending below 100 %, the remainder is *not* targeted:
    the operator asked for a partial rollout.
    """
    canary_set = [d for d in dict.fromkeys(canaries) if d in set(devices)]
    rest = [d for d in devices if d not in set(canary_set)]
    n = len(rest)
    if spec.kind == "equal":
        k = int(spec.values[0])
        bounds = [round(n * (i + 1) / k) for i in range(k)]
    elif spec.kind == "percent":
        bounds = [min(n, math.ceil(n * v / 100 - 1e-9)) for v in spec.values]
    else:
        bounds = [min(n, int(v)) for v in spec.values]
        if bounds[-1] < n:
            bounds.append(n)
    waves: list[list[str]] = [canary_set] if canary_set else []
    start = 0
    for end in bounds:
        if end > start:
            waves.append(rest[start:end])
            start = end
    return waves
