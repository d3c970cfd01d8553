"""SenML-CBOR (content format 112): a CBOR array of maps with RFC 8428 integer labels.

bn -2, bt -3, n 0, v 2, vs 3, vb 4, t 6, vd 8 (a byte string); LwM2M's objlnk label is the text key ``vlo``.
Unknown negative labels (base-field extensions) and text labels ending in ``_`` are rejected.
"""

from __future__ import annotations

from lwm2m_server.protocol.codecs.base import MAX_RECORDS, CodecError, check_path, check_payload
from lwm2m_server.protocol.codecs.cbor import cbor_dumps, cbor_loads
from lwm2m_server.protocol.codecs.senml import (
    CBOR_KEYS,
    CBOR_LABELS,
    check_text_label,
    content_to_records,
    records_to_content,
)
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath


def _label(key: object, index: int) -> str | None:
    if isinstance(key, bool):
        raise CodecError(f"record {index}: invalid label {key!r}")
    if isinstance(key, int):
        if key in CBOR_LABELS:
            return CBOR_LABELS[key]
        if key < 0:
            raise CodecError(f"record {index}: unknown base label {key}")
        return None  # unknown positive labels may be ignored
    if isinstance(key, str):
        return check_text_label(key, index) if key == "vlo" or key.endswith("_") else None
    raise CodecError(f"record {index}: invalid label of type {type(key).__name__}")


class SenmlCborCodec:
    content_format = 112
    name = "senml-cbor"

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        check_path(path)
        records = content_to_records(path, content, model)
        return cbor_dumps([{CBOR_KEYS[label]: value for label, value in r.items()} for r in records])

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        check_path(path)
        pack = cbor_loads(check_payload(payload))
        if not isinstance(pack, list):
            raise CodecError("SenML-CBOR payload must be a CBOR array of records")
        if len(pack) > MAX_RECORDS:
            raise CodecError(f"SenML pack has {len(pack)} records, more than {MAX_RECORDS}")
        records: list[dict[str, object]] = []
        for index, raw in enumerate(pack):
            if not isinstance(raw, dict):
                raise CodecError(f"record {index} is not a CBOR map")
            record: dict[str, object] = {}
            for key, value in raw.items():
                label = _label(key, index)
                if label is not None:
                    record[label] = value
            records.append(record)
        return records_to_content(path, records, model)
