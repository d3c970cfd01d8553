"""SenML-CBOR (content format 112): a CBOR array of maps with RFC 8428 integer labels.

bn -2, bt -3, n 0, v 2, vs 3, vb 4, t 6, vd 8 (a byte string); LwM2M's objlnk label is the text key ``vlo``.
Unknown negative labels (base-field extensions) and text labels ending in ``_`` are rejected. Numbers may be
any CBOR number form (integers, bignums, half/single/double floats, tag 4 decimal fractions, tag 5 bigfloats).
"""

from __future__ import annotations

from lwm2m_server.protocol.codecs.base import MAX_RECORDS, CodecError, check_path, check_payload
from lwm2m_server.protocol.codecs.cbor import cbor_dumps, cbor_loads, normalize_number
from lwm2m_server.protocol.codecs.senml import (
    CBOR_KEYS,
    CBOR_LABELS,
    TimedValue,
    check_text_label,
    content_to_records,
    records_to_content,
    records_to_timed,
    timed_to_records,
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
        return self._dumps(content_to_records(path, content, model))

    def encode_root(self, content: Content, model: ObjectRegistry) -> bytes:
        return self._dumps(content_to_records(None, content, model))

    def encode_timed(self, values: list[TimedValue], model: ObjectRegistry) -> bytes:
        """A root pack of timestamped values (Send)."""
        return self._dumps(timed_to_records(values, model))

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        check_path(path)
        return records_to_content(path, self.records(payload), model)

    def decode_root(self, payload: bytes, model: ObjectRegistry) -> Content:
        return records_to_content(None, self.records(payload), model)

    def decode_timed(self, payload: bytes, model: ObjectRegistry) -> list[TimedValue]:
        """A root pack (Send) as timestamped values; one path may repeat at different times."""
        return records_to_timed(None, self.records(payload), model)

    @staticmethod
    def _dumps(records: list[dict[str, object]]) -> bytes:
        return cbor_dumps([{CBOR_KEYS[label]: value for label, value in r.items()} for r in records])

    @staticmethod
    def records(payload: bytes) -> list[dict[str, object]]:
        """The pack's records with JSON label names; Decimal numbers normalised, unknown labels dropped."""
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
                    record[label] = normalize_number(value, f"record {index}: {label}")
            records.append(record)
        return records
