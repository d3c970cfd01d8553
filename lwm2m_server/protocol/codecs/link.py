"""CoRE link format (content format 40): Discover answers and registration payloads.

A link document isn't resource content, so as a :class:`Codec` it maps to one Corelnk string held at
the request path itself (any level, e.g. ``{/3/0: "</3/0/1>,</3/0/2>"}``), validated by the RFC 6690
parser. ``decode_links`` / ``encode_links`` give the parsed :class:`Link` list, which is what callers
usually want.
"""

from __future__ import annotations

from collections.abc import Iterable

from lwm2m_server.protocol.codecs.base import CodecError, check_path, check_payload
from lwm2m_server.protocol.codecs.values import utf8
from lwm2m_server.protocol.linkformat import Link, LinkFormatError, format_link_format, parse_link_format
from lwm2m_server.protocol.model import Content, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath


def decode_links(payload: bytes) -> list[Link]:
    """Parses a link-format payload; CodecError on bad UTF-8 or bad syntax."""
    payload = check_payload(payload)
    try:
        return parse_link_format(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CodecError(f"link format is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except LinkFormatError as exc:
        raise CodecError(f"bad link format: {exc}") from None


def encode_links(links: Iterable[Link]) -> bytes:
    try:
        return format_link_format(links).encode("utf-8")
    except LinkFormatError as exc:
        raise CodecError(f"cannot format links: {exc}") from None


class LinkCodec:
    content_format = 40
    name = "link"

    def encode(self, path: LwM2MPath, content: Content, model: ObjectRegistry) -> bytes:
        check_path(path)
        if not isinstance(content, dict) or set(content) != {path}:
            raise CodecError(f"link format carries one Corelnk string at the request path {path}")
        text = content[path]
        if not isinstance(text, str):
            raise CodecError(f"{path}: link format needs a str, got {type(text).__name__}")
        payload = text.encode("utf-8")
        decode_links(payload)  # validate: we never send malformed link format
        return payload

    def decode(self, path: LwM2MPath, payload: bytes, model: ObjectRegistry) -> Content:
        check_path(path)
        decode_links(payload)
        return {path: utf8(payload, path)}
