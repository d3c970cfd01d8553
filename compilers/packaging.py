"""Bridge from a compiled artifact to a signed package (``compilers.package`` + ``compilers.keys``).

The fit check uses :func:`package_size` so the flash verdict is about the exact bytes a device stores.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compilers import keys, package
from compilers.artifact import Artifact
from compilers.base import CompileError
from compilers.report import FitReport
from compilers.target import Target

SEQUENCE_PLACEHOLDER = 1 << 40  # same CBOR width as a millisecond timestamp, so sizes match real packages


@lru_cache(maxsize=1)
def _throwaway_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()  # signature length does not depend on the key


def build(
    art: Artifact, name: str, target: Target, key: Ed25519PrivateKey, *, version: str = "1", sequence: int | None = None
) -> bytes:
    return package.build_package(
        payload=art.data,
        signing_key=key,
        name=name,
        version=version,
        sequence=sequence,
        variant=art.variant,
        arena_bytes=art.arena_for(target.pointer_size),
        input=art.input_spec,
        output=art.output_spec,
        target=target.to_dict(),
    )


def package_size(art: Artifact, name: str, target: Target) -> int:
    """Exact size of the signed CBOR package for ``art`` (payload + manifest + signature + envelope)."""
    return len(build(art, name, target, _throwaway_key(), sequence=SEQUENCE_PLACEHOLDER))


def write_signed_package(report: FitReport, path: Path, data_dir: Path) -> Path:
    """Sign the chosen artifact with the data dir's key (created on first use) and write the package."""
    art = report.chosen_artifact
    if art is None:
        raise CompileError("nothing was chosen; no package to write")
    key = keys.load_or_create_signing_key(Path(data_dir))
    path.write_bytes(build(art, report.model, report.target, key))
    return path
