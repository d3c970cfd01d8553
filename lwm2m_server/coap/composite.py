"""Read-Composite (FETCH, LwM2M 1.1) payloads: the request lists paths, the answer is a SenML pack over several
objects. The foundation codecs decode relative to one base path, so the answer is split per object (names made
absolute first) and each part decoded with the object's path as base."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import cbor2

from lwm2m_server.protocol.codecs import CodecError, ContentFormat, decode
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath

SENML_FORMATS = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON)


def encode_request(content_format: int, paths: Sequence[LwM2MPath]) -> bytes:
    if content_format == ContentFormat.SENML_CBOR:
        return bytes(cbor2.dumps([{0: str(p)} for p in paths]))
    if content_format == ContentFormat.SENML_JSON:
        return json.dumps([{"n": str(p)} for p in paths]).encode()
    raise CodecError(f"read-composite needs SenML, not content format {content_format}")


def decode_response(content_format: int, payload: bytes, model: ObjectRegistry) -> Content:
    cbor = content_format == ContentFormat.SENML_CBOR
    bn_key: Any = -2 if cbor else "bn"
    n_key: Any = 0 if cbor else "n"
    try:
        pack = cbor2.loads(payload) if cbor else json.loads(payload)
    except Exception as exc:
        raise CodecError(f"composite payload is not valid {'CBOR' if cbor else 'JSON'}: {exc}") from None
    if not isinstance(pack, list):
        raise CodecError("composite payload must be a SenML pack (array)")
    groups: dict[int, list[dict[Any, Any]]] = {}
    bn = ""
    for index, record in enumerate(pack):
        if not isinstance(record, dict):
            raise CodecError(f"record {index} is not a map")
        if bn_key in record:
            if not isinstance(record[bn_key], str):
                raise CodecError(f"record {index}: bn must be a string")
            bn = record[bn_key]
        name = bn + str(record.get(n_key, ""))
        rest = {k: v for k, v in record.items() if k not in (bn_key, n_key)}
        if not any(k not in (-3, "bt", -5, "bv") for k in rest):
            continue  # base fields only
        try:
            path = LwM2MPath.parse(name)
        except ValueError as exc:
            raise CodecError(f"record {index}: bad name {name!r}: {exc}") from None
        groups.setdefault(path.object_id, []).append({n_key: name, **rest})
    out: Content = {}
    for object_id, records in groups.items():
        part = bytes(cbor2.dumps(records)) if cbor else json.dumps(records).encode()
        out.update(decode(content_format, LwM2MPath(object_id), part, model))
    return out
