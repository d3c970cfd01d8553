"""The fit report: every variant with its sizes, memory, accuracy, latency and verdict, and the choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compilers.artifact import Artifact
from compilers.target import Target


@dataclass
class VariantFit:
    variant: str
    backend: str
    size: int
    compressed_size: int
    arena_bytes: int  # full TFLM arena: planned head + persistent tail
    ram_bytes: int  # arena + runtime overhead: what the device must have free
    flash_bytes: int  # package + flash margin: what the device must have free
    accuracy: float | None
    latency_us: float | None
    fits: bool
    reason: str
    artifact: Artifact | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "backend": self.backend,
            "size": self.size,
            "compressed_size": self.compressed_size,
            "arena_bytes": self.arena_bytes,
            "ram_bytes": self.ram_bytes,
            "accuracy": self.accuracy,
            "latency_us": self.latency_us,
            "fits": self.fits,
            "reason": self.reason,
        }


@dataclass
class FitReport:
    model: str
    model_hash: str
    target: Target
    variants: list[VariantFit]
    chosen: str | None
    summary: str  # why the choice, or what the smallest variant would need
    notes: list[str] = field(default_factory=list)

    @property
    def chosen_fit(self) -> VariantFit | None:
        return next((v for v in self.variants if v.variant == self.chosen), None)

    @property
    def chosen_artifact(self) -> Artifact | None:
        fit = self.chosen_fit
        return fit.artifact if fit else None

    def variant(self, name: str) -> VariantFit:
        return next(v for v in self.variants if v.variant == name)

    def to_json(self) -> dict[str, Any]:
        """Exactly ``{"target", "chosen", "variants"}`` (the CLI's ``--json`` contract)."""
        return {
            "target": self.target.to_dict(),
            "chosen": self.chosen,
            "variants": [v.to_json() for v in self.variants],
        }
