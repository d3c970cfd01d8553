"""application/cbor (content format 60): one resource value as a CBOR data item (LwM2M 1.1).

Integers are CBOR integers, floats float64, objlnk a text string ``"3:0"``, opaque a byte string, time an
integer (a tag-1 epoch time is accepted on decode). Also home of the hardened CBOR loader SenML-CBOR uses.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from decimal import Decimal

import cbor2

from lwm2m_server.protocol.codecs.base import MAX_NESTING, CodecError, check_payload, leaf_path, single_item
from lwm2m_server.protocol.codecs.values import check_value, number_value, parse_objlnk, resource_type
from lwm2m_server.protocol.model import Content, ObjectRegistry, ResourceType, Value
from lwm2m_server.protocol.paths import LwM2MPath


def cbor_loads(payload: bytes) -> object:
    """One CBOR item from ``payload``: nesting capped, duplicate map keys and trailing bytes rejected."""
    fp = io.BytesIO(payload)
    try:
        item = cbor2.CBORDecoder(fp, max_depth=MAX_NESTING, allow_duplicate_keys=False).decode()
    except RecursionError:
        raise CodecError("CBOR nesting too deep") from None
    except Exception as exc:  # cbor2 raises CBORDecodeError, ValueError, OverflowError, ... on bad input
        raise CodecError(f"malformed CBOR: {exc}") from None
    if fp.tell() != len(payload):
        raise CodecError(f"{len(payload) - fp.tell()} trailing bytes after the CBOR item")
    return item


def normalize_number(value: object, where: str) -> object:
    """A tag 4 decimal fraction / tag 5 bigfloat (cbor2 gives a Decimal) as an int when integral, else a float;
    anything else unchanged."""
    if not isinstance(value, Decimal):
        return value
    if not value.is_finite():
        raise CodecError(f"{where}: not a finite number")
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def cbor_dumps(item: object) -> bytes:
    try:
        return cbor2.dumps(item)
    except Exception as exc:  # pragma: no cover - values are checked before they get here
        raise CodecError(f"cannot encode CBOR: {exc}") from None


def to_cbor_item(rtype: ResourceType, value: Value) -> object:
    """A checked value as the object cbor2 should write."""
    if rtype is ResourceType.OBJLNK:
        return str(value)
    return value


def from_cbor_item(rtype: ResourceType | None, item: object, path: LwM2MPath) -> Value:
    """A decoded CBOR item typed for the resource; unknown resources keep the CBOR type."""
    if isinstance(item, dt.datetime) and rtype in (None, ResourceType.TIME):  # tag 1 / tag 0 epoch time
        stamp = item.timestamp()
        return int(stamp) if math.isfinite(stamp) else number_value(ResourceType.TIME, stamp, path)
    if rtype is None:
        if isinstance(item, bool | str | bytes):
            return item
        if isinstance(item, int | float):
            return number_value(None, item, path)
        raise CodecError(f"{path}: unsupported CBOR item {type(item).__name__}")
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME, ResourceType.FLOAT):
        return number_value(rtype, item, path)
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        if not isinstance(item, str):
            raise CodecError(f"{path}: {rtype.value} resource needs a CBOR text string, got {type(item).__name__}")
        return item
    if rtype is ResourceType.BOOLEAN:
        if not isinstance(item, bool):
            raise CodecError(f"{path}: Boolean resource needs a CBOR boolean, got {type(item).__name__}")
        return item
    if rtype is ResourceType.OPAQUE:
        if not isinstance(item, bytes):
            raise CodecError(f"{path}: Opaque resource needs a CBOR byte string, got {type(item).__name__}")
        return item
    if rtype is ResourceType.OBJLNK:
        if isinstance(item, str):
            return parse_objlnk(item, path)
        raise CodecError(f"{path}: Objlnk resource needs a text string 'object:instance'")
    raise CodecError(f"{path}: executable resource has no value")


class CborCodec:
    content_format = 60
    name = "cbor"

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        value = single_item(path, content, "CBOR")
        rtype, checked = check_value(resource_type(model, path), value, path)
        return cbor_dumps(to_cbor_item(rtype, checked))

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        leaf_path(path)
        item = normalize_number(cbor_loads(check_payload(payload)), str(path))
        return {path: from_cbor_item(resource_type(model, path), item, path)}
