"""Content-format codecs: flat content (``dict[LwM2MPath, Value]``) <-> payload bytes, typed by the model.

``CONTENT_FORMATS`` maps each CoAP Content-Format number to its codec; :func:`encode` / :func:`decode`
dispatch on the number; :func:`encode_root` / :func:`decode_root` do the same for content at the root ``/``
(Read-Composite / Observe-Composite answers, Write-Composite requests, Send), which only the SenML formats,
LwM2M-JSON and LwM2M-CBOR can carry. Every failure, whatever the format, is a :class:`CodecError`.
"""

from __future__ import annotations

from enum import IntEnum

from lwm2m_server.protocol.codecs.base import MAX_PAYLOAD_BYTES, MAX_RECORDS, Codec, CodecError, RootCodec
from lwm2m_server.protocol.codecs.cbor import CborCodec
from lwm2m_server.protocol.codecs.link import LinkCodec, decode_links, encode_links
from lwm2m_server.protocol.codecs.lwm2m_cbor import LwM2MCborCodec
from lwm2m_server.protocol.codecs.lwm2m_json import LwM2MJsonCodec
from lwm2m_server.protocol.codecs.opaque import OpaqueCodec
from lwm2m_server.protocol.codecs.senml_cbor import SenmlCborCodec
from lwm2m_server.protocol.codecs.senml_json import SenmlJsonCodec
from lwm2m_server.protocol.codecs.text import TextCodec
from lwm2m_server.protocol.codecs.tlv import TlvCodec
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath


class ContentFormat(IntEnum):
    """CoAP Content-Format numbers LwM2M uses."""

    TEXT = 0
    LINK = 40
    OPAQUE = 42
    CBOR = 60
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    OLD_TLV = 1542
    LWM2M_JSON = 11543
    LWM2M_CBOR = 11544
    OLD_LWM2M_JSON = 1543


_CODECS: tuple[Codec, ...] = (
    TextCodec(),
    LinkCodec(),
    OpaqueCodec(),
    CborCodec(),
    SenmlJsonCodec(),
    SenmlCborCodec(),
    TlvCodec(ContentFormat.TLV, "tlv"),
    TlvCodec(ContentFormat.OLD_TLV, "old-tlv"),
    LwM2MJsonCodec(ContentFormat.LWM2M_JSON, "lwm2m-json"),
    LwM2MJsonCodec(ContentFormat.OLD_LWM2M_JSON, "old-lwm2m-json"),
    LwM2MCborCodec(),
)

CONTENT_FORMATS: dict[int, Codec] = {int(c.content_format): c for c in _CODECS}
"""Content-Format number -> codec."""

_BY_NAME: dict[str, Codec] = {c.name: c for c in _CODECS}


def codec_for(content_format: int) -> Codec:
    """The codec for a Content-Format number; CodecError if LwM2M doesn't define it."""
    codec = CONTENT_FORMATS.get(content_format)
    if codec is None:
        raise CodecError(f"unsupported content format {content_format}")
    return codec


def codec_by_name(name: str) -> Codec:
    """The codec by short name (``tlv``, ``senml-cbor``, ``link``, ...)."""
    codec = _BY_NAME.get(name)
    if codec is None:
        raise CodecError(f"unknown format {name!r}; known: {', '.join(sorted(_BY_NAME))}")
    return codec


def root_codec_for(content_format: int) -> RootCodec:
    """The codec for content at the root ``/``; CodecError for formats that carry one path only (TLV, text...)."""
    codec = codec_for(content_format)
    if not isinstance(codec, RootCodec):
        raise CodecError(f"{codec.name} cannot carry content for the root path /")
    return codec


def encode_root(content_format: int, content: Content, model: ObjectRegistry) -> bytes:
    return root_codec_for(content_format).encode_root(content, model)


def decode_root(content_format: int, payload: bytes, model: ObjectRegistry) -> Content:
    return root_codec_for(content_format).decode_root(payload, model)


def encode(content_format: int, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
    return codec_for(content_format).encode(path, content, model)


def decode(content_format: int, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
    return codec_for(content_format).decode(path, payload, model)


__all__ = [
    "CONTENT_FORMATS",
    "MAX_PAYLOAD_BYTES",
    "MAX_RECORDS",
    "Codec",
    "CodecError",
    "ContentFormat",
    "RootCodec",
    "codec_by_name",
    "codec_for",
    "decode",
    "decode_links",
    "decode_root",
    "encode",
    "encode_links",
    "encode_root",
    "root_codec_for",
]
