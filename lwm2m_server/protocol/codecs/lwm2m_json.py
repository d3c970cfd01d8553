"""LwM2M-JSON (content format 11543, pre-release 1543): the OMA LwM2M 1.0 JSON format.

``{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"9","v":95},{"n":"x","bv":true},
{"n":"y","ov":"3:0"}]}``. Opaque values travel base64 in ``sv``; names are ``bn`` + ``n`` (``bn``
defaults to the request path; without ``bn`` a name starting with ``/`` is already absolute). At the root
(Read-Composite answers) ``bn`` is ``/`` and every name is a full path. The same path twice is a CodecError.
"""

from __future__ import annotations

from lwm2m_server.protocol.codecs.base import (
    MAX_RECORDS,
    CodecError,
    check_path,
    check_payload,
    leaf_items,
)
from lwm2m_server.protocol.codecs.senml import base_name, check_multiplicity, resolve_name
from lwm2m_server.protocol.codecs.senml_json import json_dumps, json_loads
from lwm2m_server.protocol.codecs.values import (
    b64decode,
    b64encode,
    check_value,
    format_float,
    number_value,
    parse_objlnk,
    resource_type,
)
from lwm2m_server.protocol.model import Content, ObjectLink, ObjectRegistry, ResourceType, Value
from lwm2m_server.protocol.paths import LwM2MPath

_VALUE_KEYS = ("v", "sv", "bv", "ov")


def _entry_value(rtype: ResourceType, value: Value, path: LwM2MPath) -> tuple[str, object]:
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        return "v", value
    if rtype is ResourceType.FLOAT:
        assert isinstance(value, float)
        format_float(value, path)  # rejects inf/nan
        return "v", value
    if rtype is ResourceType.BOOLEAN:
        return "bv", value
    if rtype is ResourceType.OBJLNK:
        assert isinstance(value, ObjectLink)
        return "ov", str(value)
    if rtype is ResourceType.OPAQUE:
        assert isinstance(value, bytes)
        return "sv", b64encode(value, urlsafe=False)
    return "sv", value


def _typed(rtype: ResourceType | None, key: str, raw: object, path: LwM2MPath) -> Value:
    if key == "v":
        return number_value(rtype, raw, path)
    if key == "bv":
        if rtype not in (None, ResourceType.BOOLEAN):
            raise CodecError(f"{path}: bv does not fit a {rtype.value} resource")
        if not isinstance(raw, bool):
            raise CodecError(f"{path}: bv must be a boolean")
        return raw
    if not isinstance(raw, str):
        raise CodecError(f"{path}: {key} must be a string")
    if key == "ov":
        if rtype not in (None, ResourceType.OBJLNK):
            raise CodecError(f"{path}: ov does not fit a {rtype.value} resource")
        return parse_objlnk(raw, path)
    if rtype is ResourceType.OPAQUE:
        return b64decode(raw, path, urlsafe=False)
    if rtype not in (None, ResourceType.STRING, ResourceType.CORELNK):
        raise CodecError(f"{path}: sv does not fit a {rtype.value} resource")
    return raw


class LwM2MJsonCodec:
    """OMA LwM2M 1.0 JSON; ``content_format`` 11543, or 1543 for the pre-release number."""

    def __init__(self, content_format: int = 11543, name: str = "lwm2m-json") -> None:
        self.content_format = content_format
        self.name = name

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        return self._encode(path, content, model)

    def encode_root(self, content: Content, model: ObjectRegistry) -> bytes:
        return self._encode(None, content, model)

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        check_path(path)
        return self._decode(path, payload, model)

    def decode_root(self, payload: bytes, model: ObjectRegistry) -> Content:
        return self._decode(None, payload, model)

    def _encode(self, path: LwM2MPath | None, content: Content, model: ObjectRegistry) -> bytes:
        items = leaf_items(path, content)
        base = base_name(path, items) or "/"
        entries: list[dict[str, object]] = []
        for key, value in items:
            check_multiplicity(model, key)
            rtype, checked = check_value(resource_type(model, key), value, key)
            entry: dict[str, object] = {}
            name = str(key)[len(base) :]
            if name:
                entry["n"] = name
            label, item = _entry_value(rtype, checked, key)
            entry[label] = item
            entries.append(entry)
        return json_dumps({"bn": base, "e": entries})

    def _decode(self, path: LwM2MPath | None, payload: bytes, model: ObjectRegistry) -> Content:
        doc = json_loads(check_payload(payload))
        if not isinstance(doc, dict):
            raise CodecError("LwM2M-JSON payload must be a JSON object")
        bn = doc.get("bn")
        if bn is not None and not isinstance(bn, str):
            raise CodecError("LwM2M-JSON bn must be a string")
        entries = doc.get("e")
        if not isinstance(entries, list):
            raise CodecError("LwM2M-JSON payload needs an array 'e'")
        if len(entries) > MAX_RECORDS:
            raise CodecError(f"LwM2M-JSON has {len(entries)} entries, more than {MAX_RECORDS}")
        out: Content = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise CodecError(f"entry {index} is not a JSON object")
            n = entry.get("n", "")
            if not isinstance(n, str):
                raise CodecError(f"entry {index}: n must be a string")
            keys = [k for k in _VALUE_KEYS if k in entry]
            if len(keys) != 1:
                raise CodecError(f"entry {index} needs exactly one of v, sv, bv, ov")
            key = resolve_name(path, _full_name(path, bn, n), index, "entry")
            if key in out:
                raise CodecError(f"entry {index}: duplicate path {key}")
            out[key] = _typed(resource_type(model, key), keys[0], entry[keys[0]], key)
        return out


def _full_name(path: LwM2MPath | None, bn: str | None, n: str) -> str:
    """``bn + n``; without ``bn`` an absolute ``n`` stands alone, a relative one is under the request path."""
    if bn is not None:
        return bn + n
    if n.startswith("/") or path is None:
        return n
    return f"{path}/{n}" if n else str(path)
