"""SenML-JSON (content format 110): a JSON array of records with text labels; ``vd`` is base64url.

Also home of the hardened JSON loader LwM2M-JSON uses (strict UTF-8, no NaN/Infinity, no duplicate
keys; deep nesting is a CodecError, not a RecursionError).
"""

from __future__ import annotations

import json
import math

from lwm2m_server.protocol.codecs.base import CodecError, check_payload
from lwm2m_server.protocol.codecs.senml import SenmlPackCodec, check_text_label, pack_records
from lwm2m_server.protocol.codecs.values import b64decode, b64encode
from lwm2m_server.protocol.paths import LwM2MPath


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise CodecError(f"duplicate JSON key {key[:32]!r}")
        out[key] = value
    return out


def _no_constants(name: str) -> object:
    raise CodecError(f"JSON constant {name} is not allowed")


def json_loads(payload: bytes) -> object:
    """Parses untrusted JSON: UTF-8 only, no NaN/Infinity, no duplicate keys, deep nesting rejected."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"payload is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except CodecError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"malformed JSON: {str(exc)[:120]}") from None


def _text_label(key: object, index: int) -> str | None:
    assert isinstance(key, str)  # JSON object keys are strings
    return check_text_label(key, index)


def json_dumps(item: object) -> bytes:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def check_finite(record: dict[str, object], label: str) -> None:
    value = record.get(label)
    if isinstance(value, float) and not math.isfinite(value):
        raise CodecError(f"{value} has no JSON representation")


class SenmlJsonCodec(SenmlPackCodec):
    content_format = 110
    name = "senml-json"

    @staticmethod
    def _dumps(records: list[dict[str, object]]) -> bytes:
        for record in records:
            check_finite(record, "v")
            if "vd" in record:
                vd = record["vd"]
                assert isinstance(vd, bytes)
                record["vd"] = b64encode(vd, urlsafe=True)
        return json_dumps(records)

    @staticmethod
    def records(payload: bytes, path: LwM2MPath | None = None) -> list[dict[str, object]]:
        """The pack's records with JSON labels and ``vd`` as bytes (unknown labels dropped)."""

        def vd_bytes(value: object, index: int, label: str) -> object:
            if label != "vd":
                return value
            if not isinstance(value, str):
                raise CodecError(f"record {index}: vd must be a base64url string")
            try:
                return b64decode(value, path or LwM2MPath(0), urlsafe=True)
            except CodecError as exc:
                raise CodecError(f"record {index}: {exc}") from None

        return pack_records(json_loads(check_payload(payload)), serialisation="JSON", record_kind="JSON object",
                            label_of=_text_label, value_of=vd_bytes)  # fmt: skip
