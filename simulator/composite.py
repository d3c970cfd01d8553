"""Composite operations on the device side (LwM2M 1.1, on ``/``): Read-Composite (FETCH) names paths in a
SenML pack and gets one root pack back; Write-Composite (iPATCH) carries root content. The formats and the
path list are the server core's (:mod:`lwm2m_server.protocol.composite`); errors become CoAP 4.00.
"""

from __future__ import annotations

from lwm2m_server.protocol import codecs
from lwm2m_server.protocol.codecs import CodecError
from lwm2m_server.protocol.composite import decode_paths
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.values import LwM2MError

SENML_JSON, SENML_CBOR = 110, 112


def decode_composite_paths(content_format: int, payload: bytes) -> list[LwM2MPath]:
    """Paths named by a Read-Composite request (``bn`` + ``n`` of every record)."""
    try:
        return decode_paths(content_format, payload)
    except CodecError as exc:
        raise LwM2MError("4.00", f"malformed composite request: {exc}") from None


def decode_composite_content(content_format: int, payload: bytes, model: ObjectRegistry) -> Content:
    """A Write-Composite body: values at absolute paths, any objects."""
    try:
        return codecs.decode_root(content_format, payload, model)
    except CodecError as exc:
        raise LwM2MError("4.00", f"malformed composite content: {exc}") from None


def encode_composite(content_format: int, parts: list[tuple[LwM2MPath, Content]], model: ObjectRegistry) -> bytes:
    """One root pack with the values of every part (overlapping parts are merged)."""
    merged: Content = {}
    for _path, content in parts:
        merged.update(content)
    return codecs.encode_root(content_format, merged, model)
