"""Read-Composite (LwM2M 1.1 FETCH on ``/``): the request names paths in SenML, the answer is one SenML pack.

A SenML pack may set a new base name in any record, so the packs of each requested path, concatenated,
form one valid pack; the per-path encoding stays with the shared codecs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import cbor2

from lwm2m_server.protocol import codecs
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.objects import LwM2MError

SENML_JSON, SENML_CBOR = 110, 112
MAX_PATHS = 64


def decode_composite_paths(content_format: int, payload: bytes) -> list[LwM2MPath]:
    """Paths named by a Read-Composite request (``bn`` + ``n`` of every record)."""
    try:
        records = cbor2.loads(payload) if content_format == SENML_CBOR else json.loads(payload)
    except Exception as exc:
        raise LwM2MError("4.00", f"malformed composite request: {exc}") from None
    if not isinstance(records, list) or not records or len(records) > MAX_PATHS:
        raise LwM2MError("4.00", "a composite request is a non-empty SenML array")
    keys = ("bn", "n") if content_format == SENML_JSON else (-2, 0)
    base = ""
    out: list[LwM2MPath] = []
    for record in records:
        if not isinstance(record, dict):
            raise LwM2MError("4.00", "a SenML record must be a map")
        bn, n = record.get(keys[0]), record.get(keys[1], "")
        if bn is not None:
            base = str(bn)
        try:
            out.append(LwM2MPath.parse(base + str(n)))
        except ValueError as exc:
            raise LwM2MError("4.00", str(exc)) from None
    return out


def encode_composite(content_format: int, parts: Iterable[tuple[LwM2MPath, Content]], model: ObjectRegistry) -> bytes:
    records: list[object] = []
    for path, content in parts:
        if not content:
            continue
        chunk = codecs.encode(content_format, path, content, model)
        records.extend(cbor2.loads(chunk) if content_format == SENML_CBOR else json.loads(chunk))
    if content_format == SENML_CBOR:
        return cbor2.dumps(records)
    return json.dumps(records, separators=(",", ":")).encode()
