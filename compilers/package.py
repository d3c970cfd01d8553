"""Signed model packages: a CBOR envelope ``{manifest, signature, payload}`` (the SUIT idea).

The manifest names the model, version, a monotonic sequence number, the payload's sha256 and
size, the variant, the TFLM arena it needs, the input/output tensor specs and the target it was
built for. The signature is Ed25519 over the canonical CBOR encoding of the manifest map, so the
payload is covered through its hash. ``verify`` checks, in order: envelope shape, manifest fields,
signature, size, hash; each failure is a typed ``PackageError``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compilers.keys import KeyFileError, load_public_key

SIGNATURE_BYTES = 64
FORMAT_VERSION = 1


class PackageError(ValueError):
    """Any reason a package is refused."""


class MalformedPackage(PackageError):
    """Not a well-formed envelope or manifest (garbage, truncated CBOR, wrong types)."""


class BadSignature(PackageError):
    """The manifest signature does not verify with the given public key."""


class SizeMismatch(PackageError):
    """The payload length differs from the manifest's size."""


class HashMismatch(PackageError):
    """The payload's sha256 differs from the manifest's."""


@dataclass(frozen=True)
class IOSpec:
    """One input or output tensor: shape, dtype and affine quantization (None if float)."""

    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    def to_map(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "scale": self.scale, "zero_point": self.zero_point}

    @classmethod
    def from_map(cls, data: Any) -> IOSpec:
        m = _mapping(data, "tensor spec")
        shape = m.get("shape")
        if not isinstance(shape, list) or not all(_is_int(d) and d >= -1 for d in shape):
            raise MalformedPackage("tensor spec shape must be a list of integers")
        scale, zp = m.get("scale"), m.get("zero_point")
        if scale is not None and not isinstance(scale, int | float):
            raise MalformedPackage("tensor spec scale must be a number or null")
        if zp is not None and not _is_int(zp):
            raise MalformedPackage("tensor spec zero_point must be an integer or null")
        return cls(tuple(shape), _str(m, "dtype"), None if scale is None else float(scale), zp)

    @classmethod
    def coerce(cls, spec: Any) -> IOSpec:
        """From an IOSpec, a mapping, or any object with shape/dtype/scale/zero_point."""
        if spec is None or isinstance(spec, IOSpec):
            return spec if spec is not None else cls((), "unknown")
        if isinstance(spec, dict):
            return cls.from_map(spec)
        return cls(
            tuple(int(d) for d in spec.shape),
            str(spec.dtype),
            None if getattr(spec, "scale", None) is None else float(spec.scale),
            None if getattr(spec, "zero_point", None) is None else int(spec.zero_point),
        )


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    sequence: int
    sha256: str
    size: int
    variant: str
    arena_bytes: int
    input: IOSpec
    output: IOSpec
    target: dict[str, Any] = field(default_factory=dict)

    def to_map(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "sequence": self.sequence,
            "sha256": self.sha256,
            "size": self.size,
            "variant": self.variant,
            "arena_bytes": self.arena_bytes,
            "input": self.input.to_map(),
            "output": self.output.to_map(),
            "target": dict(self.target),
        }

    def canonical_bytes(self) -> bytes:
        return cbor2.dumps(self.to_map(), canonical=True)

    @classmethod
    def from_map(cls, data: Any) -> Manifest:
        m = _mapping(data, "manifest")
        if m.get("format", FORMAT_VERSION) != FORMAT_VERSION:
            raise MalformedPackage(f"unsupported package format {m.get('format')!r}")
        sha = _str(m, "sha256")
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise MalformedPackage("manifest sha256 must be 64 lowercase hex digits")
        target = m.get("target", {})
        if not isinstance(target, dict) or not all(isinstance(k, str) for k in target):
            raise MalformedPackage("manifest target must be a map with string keys")
        return cls(
            name=_str(m, "name"),
            version=_str(m, "version"),
            sequence=_uint(m, "sequence"),
            sha256=sha,
            size=_uint(m, "size"),
            variant=_str(m, "variant"),
            arena_bytes=_uint(m, "arena_bytes"),
            input=IOSpec.from_map(m.get("input")),
            output=IOSpec.from_map(m.get("output")),
            target=target,
        )


class VerifiedPackage(NamedTuple):
    manifest: Manifest
    payload: bytes


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _mapping(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise MalformedPackage(f"{what} must be a map with string keys")
    return data


def _str(m: dict[str, Any], key: str) -> str:
    v = m.get(key)
    if not isinstance(v, str):
        raise MalformedPackage(f"manifest field {key!r} must be a string")
    return v


def _uint(m: dict[str, Any], key: str) -> int:
    v = m.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise MalformedPackage(f"manifest field {key!r} must be a non-negative integer")
    return v


def _default_specs(payload: bytes) -> tuple[IOSpec, IOSpec]:
    """Read the first input/output specs of a .tflite payload (unknown if it is not one)."""
    from compilers.tflite_schema import ModelFormatError, parse_model

    try:
        main = parse_model(payload).main
    except ModelFormatError:
        return IOSpec((), "unknown"), IOSpec((), "unknown")

    def spec(i: int) -> IOSpec:
        t = main.tensors[i]
        return IOSpec(t.shape, t.dtype, t.scale, t.zero_point)

    return spec(main.inputs[0]), spec(main.outputs[0])


def make_manifest(
    payload: bytes,
    *,
    name: str,
    version: str,
    variant: str,
    arena_bytes: int,
    sequence: int | None = None,
    input: Any = None,
    output: Any = None,
    target: dict[str, Any] | None = None,
) -> Manifest:
    """A manifest for ``payload``; sha256 and size come from the payload itself. ``sequence``
    defaults to the current time in milliseconds (monotonic across builds of one server);
    missing specs are read from the payload when it is a .tflite."""
    in_default, out_default = _default_specs(payload) if input is None or output is None else (None, None)
    return Manifest(
        name=name,
        version=version,
        sequence=time.time_ns() // 1_000_000 if sequence is None else int(sequence),
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        variant=variant,
        arena_bytes=int(arena_bytes),
        input=IOSpec.coerce(input if input is not None else in_default),
        output=IOSpec.coerce(output if output is not None else out_default),
        target=dict(target or {}),
    )


def build_package(
    manifest: Manifest | None = None,
    payload: bytes | None = None,
    key: Ed25519PrivateKey | None = None,
    *,
    signing_key: Ed25519PrivateKey | None = None,
    **fields: Any,
) -> bytes:
    """Sign and wrap ``payload``. Either pass a ``Manifest`` (its sha256/size are recomputed from
    the payload) or the manifest fields as keywords (see ``make_manifest``)."""
    key = key or signing_key
    if payload is None or key is None:
        raise TypeError("build_package needs a payload and a signing key")
    payload = bytes(payload)
    if manifest is None:
        manifest = make_manifest(payload, **fields)
    elif fields:
        raise TypeError("pass either a Manifest or manifest fields, not both")
    manifest = replace(manifest, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))
    signed = manifest.canonical_bytes()
    envelope = {"manifest": manifest.to_map(), "signature": key.sign(signed), "payload": payload}
    return cbor2.dumps(envelope, canonical=True)


def _decode(package: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    try:
        envelope = cbor2.loads(bytes(package))
    except Exception as exc:  # cbor2 raises many types on garbage (decode, overflow, tag errors)
        raise MalformedPackage(f"not a CBOR package: {type(exc).__name__}") from exc
    if not isinstance(envelope, dict) or set(envelope) != {"manifest", "signature", "payload"}:
        raise MalformedPackage("envelope must be a map of exactly manifest, signature, payload")
    raw, sig, payload = envelope["manifest"], envelope["signature"], envelope["payload"]
    if not isinstance(sig, bytes) or len(sig) != SIGNATURE_BYTES:
        raise MalformedPackage("signature must be 64 bytes")
    if not isinstance(payload, bytes):
        raise MalformedPackage("payload must be a byte string")
    return _mapping(raw, "manifest"), sig, payload


def _check_payload(manifest: Manifest, payload: bytes) -> None:
    if len(payload) != manifest.size:
        raise SizeMismatch(f"payload is {len(payload)} bytes, manifest says {manifest.size}")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.sha256:
        raise HashMismatch(f"payload sha256 {digest[:16]}… does not match the manifest's {manifest.sha256[:16]}…")


def verify(package: bytes, public_key: bytes | Ed25519PublicKey) -> VerifiedPackage:
    """Check the envelope, the signature (over the canonical manifest), size and hash."""
    raw, sig, payload = _decode(package)
    manifest = Manifest.from_map(raw)
    try:
        key = load_public_key(public_key)
    except (KeyFileError, ValueError) as exc:
        raise BadSignature(f"unusable public key: {exc}") from exc
    try:
        signed = cbor2.dumps(raw, canonical=True)
        key.verify(sig, signed)
    except InvalidSignature as exc:
        raise BadSignature("manifest signature does not verify") from exc
    except Exception as exc:  # re-encoding a decoded map should not fail, but never leak other types
        raise MalformedPackage(f"manifest cannot be re-encoded: {type(exc).__name__}") from exc
    _check_payload(manifest, payload)
    return VerifiedPackage(manifest, payload)


def parse(package: bytes) -> VerifiedPackage:
    """Decode WITHOUT checking the signature (for tools and devices given no key); size and hash
    are still checked."""
    raw, _, payload = _decode(package)
    manifest = Manifest.from_map(raw)
    _check_payload(manifest, payload)
    return VerifiedPackage(manifest, payload)
