"""The codec protocol, the one error type, and the checks every codec shares.

Content is always flat (``dict[LwM2MPath, Value]`` with leaf keys); the request path is the base every
format is relative to. Payloads come from untrusted devices, so every decoder caps the payload size and
record count and turns any problem into :class:`CodecError`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lwm2m_server.protocol.model import Content, ObjectRegistry, Value
from lwm2m_server.protocol.paths import LwM2MPath

MAX_PAYLOAD_BYTES = 1024 * 1024
"""Largest payload any decoder accepts (1 MiB); bigger ones are rejected before parsing."""

MAX_RECORDS = 10_000
"""Largest number of TLVs / SenML records / JSON entries in one payload."""

MAX_NESTING = 16
"""Container nesting accepted by the CBOR/JSON parsers (SenML needs 2)."""

LEAF_LEVELS = frozenset({"resource", "resource_instance"})


class CodecError(ValueError):
    """Any encoding or decoding failure: malformed payload, wrong type for the model, bad content."""


@runtime_checkable
class Codec(Protocol):
    """Converts flat content under a request path to and from one content format."""

    content_format: int
    name: str

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes: ...

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content: ...


@runtime_checkable
class RootCodec(Codec, Protocol):
    """A codec that also carries content for the root ``/`` (records with absolute paths, several objects)."""

    def encode_root(self, content: Content, model: ObjectRegistry) -> bytes: ...

    def decode_root(self, payload: bytes, model: ObjectRegistry) -> Content: ...


def check_payload(payload: bytes) -> bytes:
    """Type and size gate at the top of every decoder."""
    if isinstance(payload, bytearray | memoryview):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise CodecError(f"payload must be bytes, got {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CodecError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")
    return payload


def check_path(path: LwM2MPath) -> LwM2MPath:
    if not isinstance(path, LwM2MPath):
        raise CodecError(f"request path must be an LwM2MPath, got {type(path).__name__}")
    return path


def leaf_items(path: LwM2MPath | None, content: Content) -> list[tuple[LwM2MPath, Value]]:
    """The content's items sorted by path, after checking each key is a leaf under ``path`` (None: the root)."""
    if path is not None:
        check_path(path)
    if not isinstance(content, dict):
        raise CodecError(f"content must be a dict, got {type(content).__name__}")
    if len(content) > MAX_RECORDS:
        raise CodecError(f"content has {len(content)} values, more than {MAX_RECORDS}")
    for key in content:
        if not isinstance(key, LwM2MPath):
            raise CodecError(f"content key {key!r} is not an LwM2MPath")
        if key.level not in LEAF_LEVELS:
            raise CodecError(f"content key {key} is not a resource or resource-instance path")
        if path is not None and not path.is_prefix_of(key):
            raise CodecError(f"content key {key} is outside the request path {path}")
    return sorted(content.items())


def single_item(path: LwM2MPath, content: Content, format_name: str) -> Value:
    """The one value of a single-value format (text, opaque, CBOR), which must sit exactly at ``path``."""
    check_path(path)
    if path.level not in LEAF_LEVELS:
        raise CodecError(f"{format_name} carries one resource value; {path} is an {path.level} path")
    items = leaf_items(path, content)
    if len(items) != 1 or items[0][0] != path:
        raise CodecError(f"{format_name} needs exactly one value at {path}, got {[str(k) for k, _ in items]}")
    return items[0][1]


def leaf_path(path: LwM2MPath) -> LwM2MPath:
    """Checks a request path is a resource or resource-instance path (single-value decoders)."""
    check_path(path)
    if path.level not in LEAF_LEVELS:
        raise CodecError(f"a single-value format needs a resource path, {path} is an {path.level} path")
    return path
