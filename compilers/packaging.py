"""Turn a fit report's chosen build into a signed package file (uses ``compilers.package`` + ``compilers.keys``)."""

from __future__ import annotations

from pathlib import Path

from compilers.base import CompileError
from compilers.report import FitReport


def write_signed_package(report: FitReport, path: Path, data_dir: Path) -> Path:
    """Sign the chosen artifact with the data dir's key and write the CBOR envelope to ``path``."""
    art = report.chosen_artifact
    if art is None:
        raise CompileError("nothing was chosen; no package to write")
    try:
        from compilers import keys, package  # type: ignore[attr-defined]
    except ImportError as exc:  # the packaging helper's modules have not landed
        raise CompileError(f"signed packages unavailable: {exc}") from exc
    key = keys.load_or_create_signing_key(Path(data_dir))
    blob = package.build_package(  # type: ignore[call-arg]
        name=report.model,
        version="1",
        variant=art.variant,
        arena_bytes=art.arena_bytes,
        payload=art.data,
        signing_key=key,
    )
    path.write_bytes(blob)
    return path
