"""SenML-JSON (content format 110): a JSON array of records with text labels; ``vd`` is base64url.

Also home of the hardened JSON loader LwM2M-JSON uses (strict UTF-8, no NaN/Infinity, no duplicate
keys; deep nesting is a CodecError, not a RecursionError).
"""

from __future__ import annotations

import json
import math

from lwm2m_server.protocol.codecs.base import MAX_RECORDS, CodecError, check_path, check_payload
from lwm2m_server.protocol.codecs.senml import (
    TimedValue,
    check_text_label,
    content_to_records,
    records_to_content,
    records_to_timed,
    timed_to_records,
)
from lwm2m_server.protocol.codecs.values import b64decode, b64encode
from lwm2m_server.protocol.model import Content, ObjectRegistry
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


def json_dumps(item: object) -> bytes:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def check_finite(record: dict[str, object], label: str) -> None:
    value = record.get(label)
    if isinstance(value, float) and not math.isfinite(value):
        raise CodecError(f"{value} has no JSON representation")


class SenmlJsonCodec:
    content_format = 110
    name = "senml-json"

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
        return records_to_content(path, self.records(payload, path), model)

    def decode_root(self, payload: bytes, model: ObjectRegistry) -> Content:
        return records_to_content(None, self.records(payload, None), model)

    def decode_timed(self, payload: bytes, model: ObjectRegistry) -> list[TimedValue]:
        """A root pack (Send) as timestamped values; one path may repeat at different times."""
        return records_to_timed(None, self.records(payload, None), model)

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
    def records(payload: bytes, path: LwM2MPath | None) -> list[dict[str, object]]:
        """The pack's records with JSON labels and ``vd`` as bytes (unknown labels dropped)."""
        pack = json_loads(check_payload(payload))
        if not isinstance(pack, list):
            raise CodecError("SenML-JSON payload must be a JSON array of records")
        if len(pack) > MAX_RECORDS:
            raise CodecError(f"SenML pack has {len(pack)} records, more than {MAX_RECORDS}")
        records: list[dict[str, object]] = []
        for index, raw in enumerate(pack):
            if not isinstance(raw, dict):
                raise CodecError(f"record {index} is not a JSON object")
            record: dict[str, object] = {}
            for key, value in raw.items():
                label = check_text_label(key, index)
                if label is not None:
                    record[label] = value
            if "vd" in record:
                vd = record["vd"]
                if not isinstance(vd, str):
                    raise CodecError(f"record {index}: vd must be a base64url string")
                try:
                    record["vd"] = b64decode(vd, path or LwM2MPath(0), urlsafe=True)
                except CodecError as exc:
                    raise CodecError(f"record {index}: {exc}") from None
            records.append(record)
        return records
