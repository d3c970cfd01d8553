"""OMA TLV (content formats 11542 and the pre-release 1542).

Each TLV starts with a type byte: bits 7-6 the identifier kind (00 object instance, 01 resource instance,
10 multiple resource, 11 resource with value), bit 5 set for a 16-bit identifier, bits 4-3 the size of the
length field (0-3 bytes) and bits 2-0 the length itself when that size is 0. Object instances nest
resources, multiple resources nest resource instances; nothing nests deeper, so parsing is bounded.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum

from lwm2m_server.protocol.codecs.base import (
    MAX_RECORDS,
    CodecError,
    check_path,
    check_payload,
    leaf_items,
)
from lwm2m_server.protocol.codecs.values import check_int, check_value, resource_type, utf8
from lwm2m_server.protocol.model import Content, ObjectLink, ObjectRegistry, ResourceType, Value
from lwm2m_server.protocol.paths import LwM2MPath

MAX_TLV_LENGTH = 0xFFFFFF
"""A 24-bit length field is the largest TLV can express."""


class TlvKind(IntEnum):
    OBJECT_INSTANCE = 0
    RESOURCE_INSTANCE = 1
    MULTIPLE_RESOURCE = 2
    RESOURCE = 3


_CHILD_KINDS: dict[TlvKind, frozenset[TlvKind]] = {
    TlvKind.OBJECT_INSTANCE: frozenset({TlvKind.RESOURCE, TlvKind.MULTIPLE_RESOURCE}),
    TlvKind.MULTIPLE_RESOURCE: frozenset({TlvKind.RESOURCE_INSTANCE}),
}


@dataclass(frozen=True, slots=True)
class Tlv:
    """One TLV: a leaf (``value``) for kinds 01/11, or a container (``children``) for kinds 00/10."""

    kind: TlvKind
    id: int
    value: bytes = b""
    children: tuple[Tlv, ...] = ()


# ---- header and structure ------------------------------------------------------------------------


def encode_header(kind: TlvKind, ident: int, length: int) -> bytes:
    """The type byte, identifier and length field for a TLV of ``length`` value bytes."""
    if not 0 <= ident <= 0xFFFF:
        raise CodecError(f"TLV identifier {ident} does not fit 16 bits")
    if not 0 <= length <= MAX_TLV_LENGTH:
        raise CodecError(f"TLV value of {length} bytes exceeds the 24-bit length field")
    type_byte = kind << 6
    if ident > 0xFF:
        type_byte |= 0x20
        id_bytes = ident.to_bytes(2, "big")
    else:
        id_bytes = ident.to_bytes(1, "big")
    if length <= 7:
        return bytes([type_byte | length]) + id_bytes
    size = 1 if length <= 0xFF else 2 if length <= 0xFFFF else 3
    return bytes([type_byte | size << 3]) + id_bytes + length.to_bytes(size, "big")


def encode_tlv(tlv: Tlv) -> bytes:
    body = b"".join(encode_tlv(c) for c in tlv.children) if tlv.children else tlv.value
    return encode_header(tlv.kind, tlv.id, len(body)) + body


def decode_tlvs(data: bytes) -> list[Tlv]:
    """Parses a TLV sequence; containers are parsed into children. CodecError on any malformation."""
    counter = [0, 0]  # values, containers
    return _parse(data, 0, len(data), None, counter)


def _parse(data: bytes, start: int, end: int, allowed: frozenset[TlvKind] | None, counter: list[int]) -> list[Tlv]:
    out: list[Tlv] = []
    pos = start
    while pos < end:
        type_byte = data[pos]
        kind = TlvKind(type_byte >> 6)
        # every value may sit in an object instance and a multiple resource: 2 containers per value at most
        counter[kind in _CHILD_KINDS] += 1
        if counter[0] > MAX_RECORDS or counter[1] > 2 * MAX_RECORDS:
            raise CodecError(f"TLV payload has more than {MAX_RECORDS} values (or twice as many containers)")
        id_size = 2 if type_byte & 0x20 else 1
        len_size = (type_byte >> 3) & 0x03
        header_end = pos + 1 + id_size + len_size
        if header_end > end:
            raise CodecError(f"TLV header at offset {pos} is truncated")
        ident = int.from_bytes(data[pos + 1 : pos + 1 + id_size], "big")
        length = type_byte & 0x07 if len_size == 0 else int.from_bytes(data[pos + 1 + id_size : header_end], "big")
        value_end = header_end + length
        if value_end > end:
            raise CodecError(f"TLV at offset {pos} declares {length} value bytes but only {end - header_end} remain")
        if allowed is not None and kind not in allowed:
            raise CodecError(f"TLV at offset {pos}: a {kind.name.lower()} cannot appear here")
        if kind in _CHILD_KINDS:
            children = tuple(_parse(data, header_end, value_end, _CHILD_KINDS[kind], counter))
            out.append(Tlv(kind, ident, children=children))
        else:
            out.append(Tlv(kind, ident, value=data[header_end:value_end]))
        pos = value_end
    return out


# ---- values --------------------------------------------------------------------------------------


def encode_int(value: int, *, signed: bool = True) -> bytes:
    """Shortest of 1/2/4/8 bytes, big-endian (two's complement when ``signed``)."""
    for size in (1, 2, 4, 8):
        try:
            return value.to_bytes(size, "big", signed=signed)
        except OverflowError:
            continue
    raise CodecError(f"integer {value} does not fit 8 bytes")


def decode_int(data: bytes, *, signed: bool = True) -> int:
    if len(data) not in (1, 2, 4, 8):
        raise CodecError(f"TLV integer must be 1, 2, 4 or 8 bytes, got {len(data)}")
    return int.from_bytes(data, "big", signed=signed)


def encode_float(value: float) -> bytes:
    """4 bytes when the value survives a round trip through binary32, else 8 bytes."""
    try:
        single = struct.pack(">f", value)
    except OverflowError:
        return struct.pack(">d", value)
    back = struct.unpack(">f", single)[0]
    if back == value or (math.isnan(value) and math.isnan(back)):
        return single
    return struct.pack(">d", value)


def decode_float(data: bytes) -> float:
    if len(data) == 4:
        return float(struct.unpack(">f", data)[0])
    if len(data) == 8:
        return float(struct.unpack(">d", data)[0])
    raise CodecError(f"TLV float must be 4 or 8 bytes, got {len(data)}")


def encode_value(rtype: ResourceType | None, value: object, path: LwM2MPath) -> bytes:
    rtype, checked = check_value(rtype, value, path)
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        assert isinstance(checked, str)
        return checked.encode("utf-8")
    if rtype in (ResourceType.INTEGER, ResourceType.TIME):
        assert isinstance(checked, int)
        return encode_int(checked)
    if rtype is ResourceType.UNSIGNED:
        assert isinstance(checked, int)
        return encode_int(checked, signed=False)
    if rtype is ResourceType.FLOAT:
        assert isinstance(checked, float)
        return encode_float(checked)
    if rtype is ResourceType.BOOLEAN:
        return b"\x01" if checked else b"\x00"
    if rtype is ResourceType.OBJLNK:
        assert isinstance(checked, ObjectLink)
        return checked.object_id.to_bytes(2, "big") + checked.instance_id.to_bytes(2, "big")
    assert isinstance(checked, bytes)
    return checked


def decode_value(rtype: ResourceType | None, data: bytes, path: LwM2MPath) -> Value:
    """Types raw TLV value bytes by the model; unknown resources stay opaque bytes."""
    try:
        if rtype is None or rtype is ResourceType.OPAQUE:
            return data
        if rtype in (ResourceType.STRING, ResourceType.CORELNK):
            return utf8(data, path)
        if rtype in (ResourceType.INTEGER, ResourceType.TIME):
            return check_int(rtype, decode_int(data), path)
        if rtype is ResourceType.UNSIGNED:
            return check_int(rtype, decode_int(data, signed=False), path)
        if rtype is ResourceType.FLOAT:
            return decode_float(data)
        if rtype is ResourceType.BOOLEAN:
            if data not in (b"\x00", b"\x01"):
                raise CodecError(f"TLV boolean must be one byte 00 or 01, got {data[:8].hex()}")
            return data == b"\x01"
        if rtype is ResourceType.OBJLNK:
            if len(data) != 4:
                raise CodecError(f"TLV objlnk must be 4 bytes, got {len(data)}")
            return ObjectLink(int.from_bytes(data[:2], "big"), int.from_bytes(data[2:], "big"))
        raise CodecError("executable resource has no value")
    except CodecError as exc:
        message = str(exc)
        raise CodecError(message if message.startswith(str(path)) else f"{path}: {message}") from None


# ---- content <-> TLV tree -------------------------------------------------------------------------


def _resource_tlvs(items: list[tuple[LwM2MPath, Value]], model: ObjectRegistry) -> list[Tlv]:
    """Resource TLVs (11, or 10 with 01 children) for items of one object instance, sorted by path."""
    out: list[Tlv] = []
    i = 0
    while i < len(items):
        key = items[i][0]
        rid = key.resource_id
        assert rid is not None
        group = [items[i]]
        i += 1
        while i < len(items) and items[i][0].resource_id == rid:
            group.append(items[i])
            i += 1
        rdef = model.resource(key)
        rtype = resource_type(model, key)
        instanced = [k.resource_instance is not None for k, _ in group]
        if any(instanced) and not all(instanced):
            raise CodecError(f"{key.truncate('resource')}: content mixes a value and resource instances")
        if all(instanced):
            if rdef is not None and not rdef.multiple:
                raise CodecError(f"{key.truncate('resource')}: single resource given resource instances")
            children = tuple(
                Tlv(TlvKind.RESOURCE_INSTANCE, k.resource_instance or 0, encode_value(rtype, v, k)) for k, v in group
            )
            out.append(Tlv(TlvKind.MULTIPLE_RESOURCE, rid, children=children))
        else:
            if rdef is not None and rdef.multiple:
                raise CodecError(f"{key}: multiple resource needs resource-instance paths")
            out.append(Tlv(TlvKind.RESOURCE, rid, encode_value(rtype, group[0][1], key)))
    return out


def content_to_tlvs(path: LwM2MPath, content: Content, model: ObjectRegistry) -> list[Tlv]:
    items = leaf_items(path, content)
    if path.level == "object":
        out: list[Tlv] = []
        i = 0
        while i < len(items):
            inst = items[i][0].object_instance
            assert inst is not None
            group = []
            while i < len(items) and items[i][0].object_instance == inst:
                group.append(items[i])
                i += 1
            out.append(Tlv(TlvKind.OBJECT_INSTANCE, inst, children=tuple(_resource_tlvs(group, model))))
        return out
    if path.level == "resource_instance":
        if not items:
            return []
        return [
            Tlv(
                TlvKind.RESOURCE_INSTANCE,
                path.resource_instance or 0,
                encode_value(resource_type(model, path), items[0][1], path),
            )
        ]
    if path.level == "resource" and items and items[0][0].resource_instance is not None:
        rdef = model.resource(path)
        if rdef is not None and not rdef.multiple:
            raise CodecError(f"{path}: single resource given resource instances")
    return _resource_tlvs(items, model)


class _Collector:
    """Decoded content plus the resource paths seen, so that nothing arrives twice."""

    def __init__(self) -> None:
        self.content: Content = {}
        self.resources: set[LwM2MPath] = set()
        self.instances: set[LwM2MPath] = set()

    def put(self, path: LwM2MPath, value: Value) -> None:
        if path in self.content:
            raise CodecError(f"{path}: the same resource instance appears twice")
        self.content[path] = value

    def instance(self, path: LwM2MPath) -> None:
        if path in self.instances:
            raise CodecError(f"{path}: the same object instance appears twice")
        self.instances.add(path)

    def resource(self, tlv: Tlv, base: LwM2MPath, model: ObjectRegistry) -> None:
        """Adds a resource-level TLV (11 or 10) under instance path ``base``."""
        rpath = _child(base, tlv.id)
        if rpath in self.resources:
            raise CodecError(f"{rpath}: the same resource appears twice")
        self.resources.add(rpath)
        rtype = resource_type(model, rpath)
        if tlv.kind is TlvKind.RESOURCE:
            self.put(rpath, decode_value(rtype, tlv.value, rpath))
        else:
            for child in tlv.children:
                ipath = _child(rpath, child.id)
                self.put(ipath, decode_value(rtype, child.value, ipath))


def _child(base: LwM2MPath, ident: int) -> LwM2MPath:
    try:
        return base.child(ident)
    except ValueError as exc:
        raise CodecError(str(exc)) from None


def _unwrap(path: LwM2MPath, tlvs: list[Tlv]) -> list[Tlv]:
    """A resource (-instance) answer some clients wrap in its object-instance TLV (and, for a resource
    instance, its multiple-resource TLV), as Leshan accepts: the wrapper must be the requested one."""
    assert path.object_instance is not None and path.resource_id is not None
    if len(tlvs) != 1 or tlvs[0].kind is not TlvKind.OBJECT_INSTANCE:
        return tlvs
    wrapper = tlvs[0]
    if wrapper.id != path.object_instance:
        raise CodecError(f"{path}: TLV wraps the answer in object instance {wrapper.id}")
    inner = list(wrapper.children)
    if path.level == "resource_instance" and len(inner) == 1 and inner[0].kind is TlvKind.MULTIPLE_RESOURCE:
        if inner[0].id != path.resource_id:
            raise CodecError(f"{path}: TLV wraps the answer in resource {inner[0].id}")
        inner = list(inner[0].children)
    return inner


def tlvs_to_content(path: LwM2MPath, tlvs: list[Tlv], model: ObjectRegistry) -> Content:
    out = _Collector()
    level = path.level
    if level in ("resource", "resource_instance"):
        tlvs = _unwrap(path, tlvs)
    for tlv in tlvs:
        if level == "object":
            if tlv.kind is TlvKind.OBJECT_INSTANCE:
                inst = _child(path, tlv.id)
                out.instance(inst)
                for res in tlv.children:
                    out.resource(res, inst, model)
                continue
            obj = model.get(path.object_id)
            if tlv.kind in (TlvKind.RESOURCE, TlvKind.MULTIPLE_RESOURCE) and obj is not None and not obj.multiple:
                out.resource(tlv, path.child(0), model)  # single-instance object: instance 0 is implied
                continue
            raise CodecError(f"{path}: object-level TLV must hold object instances, got a {tlv.kind.name.lower()}")
        if level == "instance":
            if tlv.kind is TlvKind.OBJECT_INSTANCE:
                if tlv.id != path.object_instance:
                    raise CodecError(f"{path}: TLV carries object instance {tlv.id}")
                out.instance(path)
                for res in tlv.children:
                    out.resource(res, path, model)
                continue
            if tlv.kind is TlvKind.RESOURCE_INSTANCE:
                raise CodecError(f"{path}: a resource instance TLV cannot appear at instance level")
            out.resource(tlv, path, model)
            continue
        if level == "resource":
            if tlv.kind is TlvKind.RESOURCE_INSTANCE:  # bare instances of the requested multiple resource
                ipath = _child(path, tlv.id)
                out.put(ipath, decode_value(resource_type(model, path), tlv.value, ipath))
                continue
            if tlv.kind is TlvKind.OBJECT_INSTANCE or tlv.id != path.resource_id:
                what = f"{tlv.kind.name.lower()} {tlv.id}"
                raise CodecError(f"{path}: TLV carries {what}, not resource {path.resource_id}")
            out.resource(tlv, path.parent, model)
            continue
        # resource instance
        if tlv.kind is not TlvKind.RESOURCE_INSTANCE or tlv.id != path.resource_instance:
            raise CodecError(f"{path}: TLV carries {tlv.kind.name.lower()} {tlv.id}, not that resource instance")
        out.put(path, decode_value(resource_type(model, path), tlv.value, path))
    return out.content


class TlvCodec:
    """OMA TLV; ``content_format`` 11542, or 1542 for the pre-release number some 1.0 clients use."""

    def __init__(self, content_format: int = 11542, name: str = "tlv") -> None:
        self.content_format = content_format
        self.name = name

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        check_path(path)
        return b"".join(encode_tlv(t) for t in content_to_tlvs(path, content, model))

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        check_path(path)
        payload = check_payload(payload)
        return tlvs_to_content(path, decode_tlvs(payload), model)
