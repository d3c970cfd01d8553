"""Value typing shared by the codecs: what a Python value may be for a resource type, and text forms.

The object model decides the type of a resource; a resource unknown to the model is typed by its Python
value when encoding (``bool`` before ``int``), and by whatever the wire format says when decoding.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from lwm2m_server.protocol.codecs.base import CodecError
from lwm2m_server.protocol.model import ObjectLink, ObjectRegistry, ResourceType, Value
from lwm2m_server.protocol.paths import LwM2MPath

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

_INT_TEXT = re.compile(r"[+-]?[0-9]{1,20}")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
_MAX_NUMBER_TEXT = 400
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def resource_type(model: ObjectRegistry, path: LwM2MPath) -> ResourceType | None:
    """The model's type for the resource ``path`` points at or into; None when the model doesn't know it."""
    return model.resource_type(path)


def infer_type(value: object, path: LwM2MPath) -> ResourceType:
    """The type of a value for a resource the model doesn't know."""
    if isinstance(value, bool):
        return ResourceType.BOOLEAN
    if isinstance(value, int):
        return ResourceType.UNSIGNED if value > INT64_MAX else ResourceType.INTEGER
    if isinstance(value, float):
        return ResourceType.FLOAT
    if isinstance(value, str):
        return ResourceType.STRING
    if isinstance(value, bytes | bytearray):
        return ResourceType.OPAQUE
    if isinstance(value, ObjectLink):
        return ResourceType.OBJLNK
    raise CodecError(f"{path}: unsupported value type {type(value).__name__}")


def _wrong(path: LwM2MPath, rtype: ResourceType, value: object) -> CodecError:
    return CodecError(f"{path}: {type(value).__name__} value {_short(value)} does not fit a {rtype.value} resource")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_int(rtype: ResourceType, value: int, path: LwM2MPath) -> int:
    """Range-checks an integer for INTEGER/TIME (int64) or UNSIGNED (uint64)."""
    low, high = (0, UINT64_MAX) if rtype is ResourceType.UNSIGNED else (INT64_MIN, INT64_MAX)
    if not low <= value <= high:
        raise CodecError(f"{path}: {value} is out of range for a {rtype.value} resource")
    return value


def check_value(rtype: ResourceType | None, value: object, path: LwM2MPath) -> tuple[ResourceType, Value]:
    """Validates a value before encoding; returns the type to encode it as and the normalised value."""
    if rtype is None:
        rtype = infer_type(value, path)
    if rtype is ResourceType.NONE:
        raise CodecError(f"{path}: executable resource has no value")
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        if not isinstance(value, str):
            raise _wrong(path, rtype, value)
        return rtype, value
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(path, rtype, value)
        return rtype, check_int(rtype, value, path)
    if rtype is ResourceType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(path, rtype, value)
        try:
            return rtype, float(value)
        except OverflowError:
            raise CodecError(f"{path}: {value} is too large for a Float resource") from None
    if rtype is ResourceType.BOOLEAN:
        if not isinstance(value, bool):
            raise _wrong(path, rtype, value)
        return rtype, value
    if rtype is ResourceType.OPAQUE:
        if not isinstance(value, bytes | bytearray):
            raise _wrong(path, rtype, value)
        return rtype, bytes(value)
    if rtype is ResourceType.OBJLNK:
        if not isinstance(value, ObjectLink):
            raise _wrong(path, rtype, value)
        return rtype, value
    raise CodecError(f"{path}: unsupported resource type {rtype}")  # pragma: no cover - enum is closed


def number_value(rtype: ResourceType | None, number: object, path: LwM2MPath) -> Value:
    """A decoded JSON/CBOR number typed for the resource (integral floats are accepted for integers)."""
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise CodecError(f"{path}: numeric value expected, got {type(number).__name__}")
    if rtype is None:  # unknown resource: keep the wire type, but only 64-bit integers
        if isinstance(number, int) and not INT64_MIN <= number <= UINT64_MAX:
            raise CodecError(f"{path}: integer {number} does not fit 64 bits")
        return number
    if rtype is ResourceType.FLOAT:
        try:
            return float(number)
        except OverflowError:
            raise CodecError(f"{path}: {number} is too large for a Float resource") from None
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        if isinstance(number, float):
            if not (math.isfinite(number) and number.is_integer()):
                raise CodecError(f"{path}: {number!r} is not an integer for a {rtype.value} resource")
            number = int(number)
        return check_int(rtype, number, path)
    raise CodecError(f"{path}: a numeric value does not fit a {rtype.value} resource")


def parse_objlnk(text: str, path: LwM2MPath) -> ObjectLink:
    try:
        return ObjectLink.parse(text)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CodecError(f"{path}: {exc}") from None


def utf8(data: bytes, path: LwM2MPath) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"{path}: string is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def b64decode(text: str, path: LwM2MPath, *, urlsafe: bool) -> bytes:
    """Strict base64 (standard or URL-safe alphabet); padding optional, nothing else tolerated."""
    if not (_B64URL if urlsafe else _B64).fullmatch(text):
        raise CodecError(f"{path}: invalid base64{'url' if urlsafe else ''} data")
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (len(text) != len(body) and len(text) % 4 != 0):
        raise CodecError(f"{path}: invalid base64 length")
    padded = body + "=" * (-len(body) % 4)
    try:
        return (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(padded)
    except (binascii.Error, ValueError):
        raise CodecError(f"{path}: invalid base64 data") from None


def b64encode(data: bytes, *, urlsafe: bool) -> str:
    """Standard base64 with padding, or base64url without padding (SenML ``vd``)."""
    if urlsafe:
        return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
    return base64.b64encode(data).decode("ascii")


# ---- text/plain forms (also used for string-carried values in the JSON formats) -------------------


def format_float(value: float, path: LwM2MPath) -> str:
    if not math.isfinite(value):
        raise CodecError(f"{path}: {value} has no text/JSON representation")
    return repr(value)


def to_text(rtype: ResourceType, value: Value, path: LwM2MPath) -> str:
    """The text/plain form of a checked value: decimal numbers, ``0``/``1``, ``3:0``, base64 opaque."""
    if rtype is ResourceType.BOOLEAN:
        return "1" if value else "0"
    if rtype is ResourceType.FLOAT:
        assert isinstance(value, float)
        return format_float(value, path)
    if rtype is ResourceType.OPAQUE:
        assert isinstance(value, bytes)
        return b64encode(value, urlsafe=False)
    return str(value)


def from_text(rtype: ResourceType | None, text: str, path: LwM2MPath) -> Value:
    """Parses a text/plain value for the resource type; an unknown resource stays a string."""
    if rtype is None or rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return text
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        if not _INT_TEXT.fullmatch(text):
            raise CodecError(f"{path}: {_short(text)} is not an integer")
        return check_int(rtype, int(text), path)
    if rtype is ResourceType.FLOAT:
        if len(text) > _MAX_NUMBER_TEXT or not _FLOAT_TEXT.fullmatch(text):
            raise CodecError(f"{path}: {_short(text)} is not a decimal number")
        number = float(text)
        if not math.isfinite(number):
            raise CodecError(f"{path}: {_short(text)} is out of range for a Float resource")
        return number
    if rtype is ResourceType.BOOLEAN:
        if text not in ("0", "1"):
            raise CodecError(f"{path}: boolean text must be 0 or 1, got {_short(text)}")
        return text == "1"
    if rtype is ResourceType.OBJLNK:
        return parse_objlnk(text, path)
    if rtype is ResourceType.OPAQUE:
        return b64decode(text, path, urlsafe=False)
    raise CodecError(f"{path}: executable resource has no value")
