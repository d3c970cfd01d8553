"""Targeted malformed TLV and bad content on encode: always CodecError with a useful message."""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.codecs import CONTENT_FORMATS, CodecError, ContentFormat, codec_for
from lwm2m_server.protocol.model import Content, ObjectLink
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.synthetic import MODEL

P = LwM2MPath.parse
TLV = codec_for(ContentFormat.TLV)


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        ("/3/0", "c8", "truncated"),  # no identifier
        ("/3/0", "c8 00", "truncated"),  # no length byte
        ("/3/0", "d0 00 01", "truncated"),  # 2-byte length cut short
        ("/3/0", "e1 01", "truncated"),  # 16-bit id cut short
        ("/3/0", "c8 00 14 4f70", "declares 20 value bytes but only 2 remain"),
        ("/3/0", "86 06 41 00 01 41 01", "declares"),  # inner length past the container
        ("/3/0", "86 06 c1 00 01 41 01 05", "cannot appear here"),  # resource inside a multiple resource
        ("/3", "08 00 03 08 00 00", "cannot appear here"),  # object instance inside an object instance
        ("/3/0", "c3 09 010203", "1, 2, 4 or 8 bytes"),  # 3-byte integer
        ("/40000/0", "c2 03 0000", "4 or 8 bytes"),  # 2-byte float
        ("/40000/0", "c1 04 02", "boolean"),
        ("/40000/0", "c3 07 000300", "objlnk must be 4 bytes"),
        ("/3/0", "c2 00 fffe", "UTF-8"),
        ("/3/0", "41 00 01", "resource instance TLV cannot appear at instance level"),
        ("/3/0", "08 01 03 c1 09 64", "carries object instance 1"),
        ("/3/0/9", "c1 0a 64", "not resource 9"),
        ("/3/0/6/1", "41 00 05", "not that resource instance"),
        ("/3/0", "e1 ffff 00", "65535"),  # reserved id
        ("/3/0", "c1 09 64 ff", "truncated"),  # trailing garbage byte
        ("/3/0", "c0 04", "executable"),  # a value for Reboot
    ],
)
def test_malformed_tlv(path: str, payload: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        TLV.decode(P(path), bytes.fromhex(payload.replace(" ", "")), MODEL)


MULTI = [ContentFormat.TLV, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.LWM2M_JSON]


@pytest.mark.parametrize("cf", MULTI, ids=str)
@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("/3/0", {P("/3/0/9"): "100"}, "does not fit a Integer"),
        ("/3/0", {P("/3/0/0"): 5}, "does not fit a String"),
        ("/3/0", {P("/3/0/9"): True}, "does not fit"),
        ("/3/0", {P("/3/0/9"): 2**63}, "out of range"),
        ("/40000/0", {P("/40000/0/2"): -1}, "out of range"),
        ("/40000/0", {P("/40000/0/7"): "3:0"}, "does not fit a Objlnk"),
        ("/40000/0", {P("/40000/0/5"): "text"}, "does not fit a Opaque"),
        ("/40000/0", {P("/40000/0/4"): 1}, "does not fit a Boolean"),
        ("/40000/0", {P("/40000/0/9"): 1}, "executable"),
        ("/3/0", {P("/3/0/6"): 1}, "multiple resource needs resource-instance paths"),
        ("/3/0", {P("/3/0/9/0"): 1}, "single resource given resource instances"),
        ("/3/0", {P("/4/0/0"): 1}, "outside the request path"),
        ("/3", {P("/3/0"): 1}, "not a resource or resource-instance path"),
        ("/3/0", {P("/30000/0/1"): [1]}, "outside|unsupported value type"),
        ("/30000/0", {P("/30000/0/1"): None}, "unsupported value type"),
    ],
)
def test_encode_rejects_content_that_contradicts_the_model(cf: int, path: str, content: Content, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        codec_for(cf).encode(P(path), content, MODEL)


@pytest.mark.parametrize("cf", sorted(CONTENT_FORMATS), ids=str)
def test_empty_payload_never_crashes(cf: int) -> None:
    for path in ("/3", "/3/0", "/3/0/0", "/3/0/6/1"):
        try:
            result = codec_for(cf).decode(P(path), b"", MODEL)
        except CodecError:
            continue
        assert isinstance(result, dict)


def test_unknown_resources_encode_by_python_type() -> None:
    content: Content = {
        P("/30000/0/1"): True,
        P("/30000/0/2"): -3,
        P("/30000/0/3"): 2**64 - 1,  # beyond int64: written as unsigned
        P("/30000/0/4"): 0.5,
        P("/30000/0/5"): "s",
        P("/30000/0/6"): b"\x00",
        P("/30000/0/7"): ObjectLink(1, 2),
    }
    tlv = TLV.encode(P("/30000/0"), content, MODEL)
    assert tlv == bytes.fromhex(
        "c10101 c102fd c803 08ffffffffffffffff c4043f000000 c10573 c10600 c40700010002".replace(" ", "")
    )
    # decoded without a model entry, TLV values come back as opaque bytes
    assert TLV.decode(P("/30000/0"), tlv, MODEL)[P("/30000/0/5")] == b"s"
    for cf in (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON):
        codec = codec_for(cf)
        assert codec.decode(P("/30000/0"), codec.encode(P("/30000/0"), content, MODEL), MODEL) == content
