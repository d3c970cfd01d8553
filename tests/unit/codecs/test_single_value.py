"""text/plain (0), opaque (42) and CBOR (60): one value at a resource or resource-instance path."""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.codecs import CodecError
from lwm2m_server.protocol.codecs.cbor import CborCodec
from lwm2m_server.protocol.codecs.opaque import OpaqueCodec
from lwm2m_server.protocol.codecs.text import TextCodec
from lwm2m_server.protocol.model import ObjectLink, Value
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.synthetic import MODEL

TEXT, OPAQUE, CBOR = TextCodec(), OpaqueCodec(), CborCodec()
P = LwM2MPath.parse
S = "/40000/0/"  # synthetic: 0 String 1 Integer 2 Unsigned 3 Float 4 Boolean 5 Opaque 6 Time 7 Objlnk 8 Corelnk


@pytest.mark.parametrize(
    ("path", "value", "text"),
    [
        ("/3/0/9", 100, b"100"),
        ("/3/0/9", -5, b"-5"),
        (S + "2", 2**64 - 1, b"18446744073709551615"),
        (S + "3", 1.5, b"1.5"),
        (S + "3", -0.25, b"-0.25"),
        (S + "4", True, b"1"),
        (S + "4", False, b"0"),
        (S + "7", ObjectLink(3, 0), b"3:0"),
        (S + "6", 1700000000, b"1700000000"),
        (S + "5", b"\x01\x02", b"AQI="),  # opaque in text is base64
        (S + "0", "h\u00e9llo", bytes.fromhex("68c3a96c6c6f")),
        (S + "8", '</3>;ver="1.1"', b'</3>;ver="1.1"'),
        ("/3/0/6/1", 5, b"5"),  # resource instance path
        ("/30000/0/1", "free text", b"free text"),  # unknown resource stays a string
    ],
)
def test_text_vectors(path: str, value: Value, text: bytes) -> None:
    assert TEXT.encode(P(path), {P(path): value}, MODEL) == text
    assert TEXT.decode(P(path), text, MODEL) == {P(path): value}


def test_text_decodes_other_number_spellings() -> None:
    assert TEXT.decode(P(S + "3"), b"1e3", MODEL) == {P(S + "3"): 1000.0}
    assert TEXT.decode(P(S + "3"), b"7", MODEL) == {P(S + "3"): 7.0}
    assert TEXT.decode(P(S + "1"), b"+7", MODEL) == {P(S + "1"): 7}


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        ("/3/0/9", b"1.5", "not an integer"),
        ("/3/0/9", b"abc", "not an integer"),
        ("/3/0/9", b"99999999999999999999", "out of range"),
        (S + "2", b"-1", "out of range"),
        (S + "3", b"nan", "not a decimal"),
        (S + "3", b"inf", "not a decimal"),
        (S + "3", b"1_0", "not a decimal"),
        (S + "3", b"1e999", "out of range"),
        (S + "4", b"true", "0 or 1"),
        (S + "7", b"3-0", "objlnk"),
        (S + "5", b"AQI*", "base64"),
        (S + "0", b"\xff\xfe", "UTF-8"),
        (S + "9", b"x", "executable"),
    ],
)
def test_text_rejections(path: str, payload: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        TEXT.decode(P(path), payload, MODEL)


@pytest.mark.parametrize("codec", [TEXT, OPAQUE, CBOR])
def test_single_value_formats_need_one_value_at_a_leaf(codec: TextCodec) -> None:
    with pytest.raises(CodecError, match="resource"):
        codec.decode(P("/3/0"), b"1", MODEL)
    with pytest.raises(CodecError):
        codec.encode(P("/3/0"), {P("/3/0/9"): 1}, MODEL)
    with pytest.raises(CodecError, match="exactly one value"):
        codec.encode(P(S + "5"), {}, MODEL)


@pytest.mark.parametrize(
    ("value", "message"),
    [("100", "does not fit"), (True, "does not fit"), (1.5, "does not fit"), (2**63, "out of range")],
)
def test_encode_rejects_wrong_python_type_for_model(value: Value, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        TEXT.encode(P("/3/0/9"), {P("/3/0/9"): value}, MODEL)


def test_opaque_is_raw_bytes_for_opaque_resources_only() -> None:
    path = P("/5/0/0")  # Firmware Update: Package
    assert OPAQUE.encode(path, {path: b"\x00\xff"}, MODEL) == b"\x00\xff"
    assert OPAQUE.decode(path, b"\x00\xff", MODEL) == {path: b"\x00\xff"}
    assert OPAQUE.decode(P("/30000/0/0"), b"\x01", MODEL) == {P("/30000/0/0"): b"\x01"}
    with pytest.raises(CodecError, match="Opaque resources only"):
        OPAQUE.decode(P("/3/0/0"), b"abc", MODEL)
    with pytest.raises(CodecError, match="does not fit"):
        OPAQUE.encode(P("/30000/0/0"), {P("/30000/0/0"): "text"}, MODEL)


@pytest.mark.parametrize(
    ("path", "value", "cbor_hex"),
    [
        ("/3/0/9", 100, "1864"),
        ("/3/0/9", -1, "20"),
        ("/3/0/9", 23, "17"),
        (S + "2", 2**64 - 1, "1bffffffffffffffff"),
        (S + "3", 1.5, "fb3ff8000000000000"),
        (S + "4", True, "f5"),
        (S + "0", "abc", "63616263"),
        (S + "5", b"\x01\x02", "420102"),
        (S + "6", 1700000000, "1a6553f100"),
        (S + "7", ObjectLink(3, 0), "63333a30"),
        (S + "8", "</3>", "643c2f333e"),
    ],
)
def test_cbor_vectors(path: str, value: Value, cbor_hex: str) -> None:
    payload = bytes.fromhex(cbor_hex)
    assert CBOR.encode(P(path), {P(path): value}, MODEL) == payload
    assert CBOR.decode(P(path), payload, MODEL) == {P(path): value}


def test_cbor_decode_accepts_equivalent_encodings() -> None:
    assert CBOR.decode(P(S + "6"), bytes.fromhex("c11a6553f100"), MODEL) == {P(S + "6"): 1700000000}  # tag 1
    assert CBOR.decode(P(S + "3"), bytes.fromhex("f93e00"), MODEL) == {P(S + "3"): 1.5}  # half float
    assert CBOR.decode(P(S + "3"), bytes.fromhex("02"), MODEL) == {P(S + "3"): 2.0}  # int for a Float
    assert CBOR.decode(P("/3/0/9"), bytes.fromhex("fb4059000000000000"), MODEL) == {P("/3/0/9"): 100}


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        ("/3/0/9", "f93e00", "not an integer"),
        ("/3/0/9", "6131", "numeric value expected"),
        ("/3/0/0", "01", "text string"),
        (S + "4", "01", "CBOR boolean"),
        (S + "5", "6161", "byte string"),
        (S + "7", "420003", "object:instance"),
        ("/3/0/9", "1864 00", "trailing"),
        ("/3/0/9", "19 01", "malformed CBOR"),
        ("/3/0/0", "62 fffe", "malformed CBOR"),
        ("/30000/0/0", "80", "unsupported CBOR item"),
        ("/30000/0/0", "c2 49 010000000000000000", "does not fit 64 bits"),  # bignum 2^64 for an unknown resource
        ("/3/0/9", "81" * 1000, "malformed CBOR"),
    ],
)
def test_cbor_rejections(path: str, payload: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CBOR.decode(P(path), bytes.fromhex(payload.replace(" ", "")), MODEL)
