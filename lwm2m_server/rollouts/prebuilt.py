"""Rollouts of an already signed package (``model: "package:<sha256>"``): no compile, the same fit rules.

The package was uploaded (``POST /api/packages?kind=model``) and carries its manifest's variant, size and arena;
every compile class gets that one package if it fits (flash: size + margin; RAM: arena + runtime overhead, as the
planner checks a compiled variant), else the class is incompatible with the reason.
"""

from __future__ import annotations

from compilers.target import Target
from lwm2m_server.config import CompileSettings
from lwm2m_server.ota.package_info import PackageInfo
from lwm2m_server.rollouts.model import Build, Incompatible

PACKAGE_PREFIX = "package:"


def package_sha(model: str) -> str | None:
    """The sha256 of a ``package:<sha256>`` model name (lower-cased), else None (a zoo/uploaded model name)."""
    if not model.startswith(PACKAGE_PREFIX):
        return None
    return model[len(PACKAGE_PREFIX):].strip().lower()


def prebuilt_build(info: PackageInfo, class_key: str, target: Target, c: CompileSettings) -> Build | Incompatible:
    """The package as this compile class's build, or why it does not fit."""
    reasons: list[str] = []
    flash = info.size + c.flash_margin_bytes
    if flash > target.flash_bytes:
        reasons.append(f"flash: needs {flash} B (package {info.size} + margin {c.flash_margin_bytes}), "
                       f"has {target.flash_bytes} B")
    ram = info.arena_bytes + c.runtime_overhead_bytes
    if ram > target.ram_bytes:
        reasons.append(f"RAM: needs {ram} B (arena {info.arena_bytes} + runtime {c.runtime_overhead_bytes}), "
                       f"has {target.ram_bytes} B")
    if "vela" in info.variant and not target.accelerator.startswith("ethos"):
        reasons.append(f"variant {info.variant} needs an Ethos-U NPU (device: {target.accelerator})")
    if info.variant == "float32" and not target.fpu:
        reasons.append("variant float32 needs an FPU")
    report = {"package": info.to_json(), "flash_bytes": flash, "ram_bytes": ram, "reasons": reasons}
    if reasons:
        return Incompatible(class_key, f"package {info.sha256[:12]} does not fit: " + "; ".join(reasons), report)
    return Build(class_key, info.variant, info.sha256, info.size, info.arena_bytes, None, report,
                 payload_sha=info.payload_sha256)
