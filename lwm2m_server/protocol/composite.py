"""Composite operations (LwM2M 1.1 Read-Composite / Observe-Composite on ``/`` with FETCH, Write-Composite
with iPATCH): the request body that names paths, and which formats may carry composite content.

A path list is a SenML pack of records with names only (``[{"n":"/3/0/0"},{"n":"/1/0"}]``); names resolve
as in any SenML pack (``bn`` + ``n``) and may be any level, not only leaves. The answers and the
Write-Composite body are root content: :func:`lwm2m_server.protocol.codecs.encode_root` / ``decode_root``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lwm2m_server.protocol.codecs import CodecError, ContentFormat
from lwm2m_server.protocol.codecs.cbor import cbor_dumps
from lwm2m_server.protocol.codecs.senml_cbor import SenmlCborCodec
from lwm2m_server.protocol.codecs.senml_json import SenmlJsonCodec, json_dumps
from lwm2m_server.protocol.paths import LwM2MPath

PATH_LIST_FORMATS = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON)
"""Formats a composite path list travels in, most compact first."""

MAX_PATHS = 64
"""Most paths one composite request may name."""


def encode_paths(content_format: int, paths: Sequence[LwM2MPath]) -> bytes:
    """The FETCH body naming ``paths``: one SenML record per path with its absolute name."""
    if not paths:
        raise CodecError("a composite request names at least one path")
    if len(paths) > MAX_PATHS:
        raise CodecError(f"a composite request names at most {MAX_PATHS} paths, got {len(paths)}")
    if content_format == ContentFormat.SENML_CBOR:
        return cbor_dumps([{0: str(p)} for p in paths])
    if content_format == ContentFormat.SENML_JSON:
        return json_dumps([{"n": str(p)} for p in paths])
    raise CodecError(f"a composite path list is SenML, not content format {content_format}")


def decode_paths(content_format: int, payload: bytes) -> list[LwM2MPath]:
    """The paths a composite request names (``bn`` + ``n`` of every record); duplicates are an error."""
    if content_format == ContentFormat.SENML_CBOR:
        records = SenmlCborCodec.records(payload)
    elif content_format == ContentFormat.SENML_JSON:
        records = SenmlJsonCodec.records(payload, None)
    else:
        raise CodecError(f"a composite path list is SenML, not content format {content_format}")
    if not records or len(records) > MAX_PATHS:
        raise CodecError(f"a composite request names 1 to {MAX_PATHS} paths, got {len(records)}")
    out: list[LwM2MPath] = []
    bn = ""
    for index, record in enumerate(records):
        if "bn" in record:
            if not isinstance(record["bn"], str):
                raise CodecError(f"record {index}: bn must be a string")
            bn = record["bn"]
        n = record.get("n", "")
        if not isinstance(n, str):
            raise CodecError(f"record {index}: n must be a string")
        try:
            path = LwM2MPath.parse(bn + n)
        except ValueError as exc:
            raise CodecError(f"record {index}: {exc}") from None
        if path in out:
            raise CodecError(f"record {index}: duplicate path {path}")
        out.append(path)
    return out
