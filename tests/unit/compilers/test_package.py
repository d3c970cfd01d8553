"""Signed packages: round trip, every typed refusal, the signing key's life cycle, and fuzzing."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import replace
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compilers.keys import KeyFileError, key_path, load_or_create_signing_key, public_key_bytes
from compilers.package import (
    BadSignature,
    HashMismatch,
    IOSpec,
    MalformedPackage,
    Manifest,
    PackageError,
    SizeMismatch,
    build_package,
    make_manifest,
    parse,
    verify,
)
from tests.support.shared import KWS

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUB = public_key_bytes(KEY)
PAYLOAD = b"\x01\x02tiny model bytes\x00" * 40


def _manifest(payload: bytes = PAYLOAD) -> Manifest:
    return make_manifest(
        payload,
        name="digits-cnn",
        version="1.2.0",
        variant="int8",
        arena_bytes=24_272,
        sequence=7,
        input=IOSpec((1, 8, 8, 1), "int8", 0.0039, -128),
        output=IOSpec((1, 10), "int8", 0.00390625, -128),
        target={"ram_bytes": 262_144, "flash_bytes": 1 << 20, "accelerator": "none"},
    )


def _package() -> bytes:
    return build_package(_manifest(), PAYLOAD, KEY)


def _envelope(pkg: bytes) -> dict:
    return cbor2.loads(pkg)


def test_round_trip() -> None:
    pkg = _package()
    assert pkg[0] >> 5 == 5  # a CBOR map, which is how devices tell packages from raw images
    manifest, payload = verify(pkg, PUB)
    assert payload == PAYLOAD
    assert manifest == _manifest()
    assert manifest.sha256 == hashlib.sha256(PAYLOAD).hexdigest() and manifest.size == len(PAYLOAD)
    assert verify(pkg, KEY.public_key()).manifest.sequence == 7


def test_keyword_form_reads_specs_from_a_tflite_payload() -> None:
    data = KWS.read_bytes()
    pkg = build_package(name="kws", version="1", variant="int8", arena_bytes=24_272, payload=data, signing_key=KEY)
    manifest, payload = verify(pkg, PUB)
    assert payload == data
    assert manifest.input.shape == (1, 49, 10, 1) and manifest.input.dtype == "int8"
    assert manifest.output.shape == (1, 12) and manifest.output.zero_point is not None
    assert manifest.sequence > 1_600_000_000_000  # defaults to epoch milliseconds


def test_manifest_sha_and_size_always_come_from_the_payload() -> None:
    lying = replace(_manifest(), sha256="0" * 64, size=1)
    manifest, _ = verify(build_package(lying, PAYLOAD, KEY), PUB)
    assert manifest.size == len(PAYLOAD) and manifest.sha256 != "0" * 64


def test_tampered_payload_byte_is_a_hash_mismatch() -> None:
    env = _envelope(_package())
    env["payload"] = bytes([env["payload"][0] ^ 1]) + env["payload"][1:]
    with pytest.raises(HashMismatch):
        verify(cbor2.dumps(env), PUB)


def test_tampered_manifest_is_a_bad_signature() -> None:
    env = _envelope(_package())
    env["manifest"]["arena_bytes"] = 1024  # a device would think the model fits
    with pytest.raises(BadSignature):
        verify(cbor2.dumps(env), PUB)


def test_wrong_key_is_a_bad_signature() -> None:
    other = public_key_bytes(Ed25519PrivateKey.generate())
    with pytest.raises(BadSignature):
        verify(_package(), other)
    with pytest.raises(BadSignature):
        verify(_package(), b"short key")


def test_size_mismatch_even_with_a_valid_signature() -> None:
    manifest = _manifest()
    bigger = replace(manifest, size=manifest.size + 1)
    env = {"manifest": bigger.to_map(), "signature": KEY.sign(bigger.canonical_bytes()), "payload": PAYLOAD}
    with pytest.raises(SizeMismatch):
        verify(cbor2.dumps(env), PUB)
    with pytest.raises(SizeMismatch):
        parse(cbor2.dumps(env))


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x00", b"garbage bytes", b"\xa3", cbor2.dumps([1, 2, 3]), cbor2.dumps({"manifest": {}})],
)
def test_garbage_is_malformed(blob: bytes) -> None:
    with pytest.raises(MalformedPackage):
        verify(blob, PUB)


def test_truncated_package_is_malformed() -> None:
    pkg = _package()
    for cut in (1, len(pkg) // 2, len(pkg) - 1):
        with pytest.raises(MalformedPackage):
            verify(pkg[:cut], PUB)


def test_wrong_field_types_are_malformed() -> None:
    env = _envelope(_package())
    env["manifest"]["sequence"] = "seven"
    with pytest.raises(MalformedPackage):
        verify(cbor2.dumps(env), PUB)
    env = _envelope(_package())
    env["signature"] = b"\x00" * 10
    with pytest.raises(MalformedPackage):
        verify(cbor2.dumps(env), PUB)


def test_parse_skips_only_the_signature() -> None:
    env = _envelope(_package())
    env["manifest"]["version"] = "9.9.9"
    manifest, _ = parse(cbor2.dumps(env))
    assert manifest.version == "9.9.9"


# --- keys -----------------------------------------------------------------------------------


def test_signing_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = load_or_create_signing_key(data_dir)
    path = key_path(data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_signing_key(data_dir)
    assert public_key_bytes(again) == public_key_bytes(key)
    assert len(public_key_bytes(key)) == 32
    pkg = build_package(_manifest(), PAYLOAD, key)
    assert verify(pkg, public_key_bytes(again)).payload == PAYLOAD


def test_corrupt_key_file_is_reported(tmp_path: Path) -> None:
    key_path(tmp_path).write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError):
        load_or_create_signing_key(tmp_path)


# --- fuzz -----------------------------------------------------------------------------------

VALID = _package()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_random_bytes_only_raise_package_errors(blob: bytes) -> None:
    with pytest.raises(PackageError):  # no random string carries a valid signature
        verify(blob, PUB)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_packages_never_verify_wrongly(edits: list[tuple[int, int]]) -> None:
    blob = bytearray(VALID)
    for pos, value in edits:
        blob[pos] = value
    try:
        manifest, payload = verify(bytes(blob), PUB)
    except PackageError:
        return
    # Only mutations that leave the signed content intact can pass (e.g. no-op edits).
    assert payload == PAYLOAD and manifest == _manifest()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(VALID) - 1))
def test_truncations_only_raise_package_errors(cut: int) -> None:
    with pytest.raises(PackageError):
        verify(VALID[:cut], PUB)
