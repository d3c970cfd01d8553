"""A real signed model package: the MLPerf Tiny KWS int8 model (54 KB), signed with the server's key."""

from __future__ import annotations

from pathlib import Path

from compilers import keys, package
from compilers.arena import plan_arena

KWS = Path("/work/shared/models/mlperf-tiny/kws_ref_model.tflite")


def signed_kws_package(data_dir: Path, *, version: str = "1") -> tuple[bytes, bytes]:
    """(package bytes, raw public key) for the server whose data dir is ``data_dir``."""
    key = keys.load_or_create_signing_key(data_dir)
    tflite = KWS.read_bytes()
    arena = plan_arena(tflite).total_bytes
    blob = package.build_package(
        name="kws", version=version, variant="int8", arena_bytes=arena, payload=tflite, signing_key=key
    )
    return blob, keys.public_key_bytes(key)
