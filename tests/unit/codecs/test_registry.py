"""The content-format registry and the link-format codec."""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.codecs import (
    CONTENT_FORMATS,
    Codec,
    CodecError,
    ContentFormat,
    codec_by_name,
    codec_for,
    decode,
    decode_links,
    encode,
    encode_links,
)
from lwm2m_server.protocol.linkformat import Link
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.synthetic import MODEL

P = LwM2MPath.parse


def test_every_number_has_a_codec_that_knows_its_number() -> None:
    expected = {0, 40, 42, 60, 110, 112, 11542, 1542, 11543, 1543, 11544}
    assert set(CONTENT_FORMATS) == expected
    for number, codec in CONTENT_FORMATS.items():
        assert isinstance(codec, Codec)
        assert codec.content_format == number
        assert codec_for(number) is codec
        assert codec_by_name(codec.name) is codec


def test_names() -> None:
    names = {c.name for c in CONTENT_FORMATS.values()}
    assert {"tlv", "senml-json", "senml-cbor", "lwm2m-json", "text", "opaque", "cbor", "link"} <= names
    assert codec_by_name("tlv").content_format == ContentFormat.TLV
    assert codec_by_name("old-tlv").content_format == 1542


def test_unknown_format_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="unsupported content format 50"):
        codec_for(50)
    with pytest.raises(CodecError, match="unknown format"):
        codec_by_name("xml")


def test_top_level_encode_decode_dispatch() -> None:
    content = {P("/3/0/9"): 100}
    assert encode(ContentFormat.TLV, P("/3/0/9"), content, MODEL) == bytes.fromhex("c10964")
    assert encode(ContentFormat.TEXT, P("/3/0/9"), content, MODEL) == b"100"
    assert decode(ContentFormat.TEXT, P("/3/0/9"), b"100", MODEL) == content


def test_link_codec_validates_and_keeps_the_text_at_the_request_path() -> None:
    text = '</3/0/1>;dim=2,</3/0/2>;pmin="10"'
    payload = text.encode()
    assert decode(ContentFormat.LINK, P("/3/0"), payload, MODEL) == {P("/3/0"): text}
    assert encode(ContentFormat.LINK, P("/3/0"), {P("/3/0"): text}, MODEL) == payload
    assert decode_links(payload) == [Link("/3/0/1", {"dim": "2"}), Link("/3/0/2", {"pmin": "10"})]
    assert encode_links([Link("/3/0", {"ver": "1.1", "q": None})]) == b"</3/0>;ver=1.1;q"
    for bad in (b"</3/0", b"garbage", b"</3>;\xff"):
        with pytest.raises(CodecError):
            decode(ContentFormat.LINK, P("/3/0"), bad, MODEL)
    with pytest.raises(CodecError, match="one Corelnk string"):
        encode(ContentFormat.LINK, P("/3/0"), {P("/3/0/1"): "</3>"}, MODEL)
    with pytest.raises(CodecError, match="bad link format"):
        encode(ContentFormat.LINK, P("/3/0"), {P("/3/0"): "<oops"}, MODEL)
