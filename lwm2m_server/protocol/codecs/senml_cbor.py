"""SenML-CBOR (content format 112): a CBOR array of maps with RFC 8428 integer labels.

bn -2, bt -3, n 0, v 2, vs 3, vb 4, t 6, vd 8 (a byte string); LwM2M's objlnk label is the text key ``vlo``.
Unknown negative labels (base-field extensions) and text labels ending in ``_`` are rejected. Numbers may be
any CBOR number form (integers, bignums, half/single/double floats, tag 4 decimal fractions, tag 5 bigfloats).
"""

from __future__ import annotations

from lwm2m_server.protocol.codecs.base import CodecError, check_payload
from lwm2m_server.protocol.codecs.cbor import cbor_dumps, cbor_loads, normalize_number
from lwm2m_server.protocol.codecs.senml import CBOR_KEYS, CBOR_LABELS, SenmlPackCodec, check_text_label, pack_records
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


def _number(value: object, index: int, label: str) -> object:
    return normalize_number(value, f"record {index}: {label}")


class SenmlCborCodec(SenmlPackCodec):
    content_format = 112
    name = "senml-cbor"

    @staticmethod
    def _dumps(records: list[dict[str, object]]) -> bytes:
        return cbor_dumps([{CBOR_KEYS[label]: value for label, value in r.items()} for r in records])

    @staticmethod
    def records(payload: bytes, path: LwM2MPath | None = None) -> list[dict[str, object]]:
        """The pack's records with JSON label names; Decimal numbers normalised, unknown labels dropped."""
        return pack_records(cbor_loads(check_payload(payload)), serialisation="CBOR", record_kind="CBOR map",
                            label_of=_label, value_of=_number)  # fmt: skip
