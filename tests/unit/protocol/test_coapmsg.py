"""The sans-IO CoAP codec: byte vectors written out by hand from RFC 7252 §3, aiocoap as an independent
decoder/encoder for random messages, and every malformed shape refused with CoapFormatError."""

from __future__ import annotations

import aiocoap
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.protocol import coapmsg as m

# CON POST, MID 0x1234, token 0xA1B2, Uri-Path "rd", Uri-Query "ep=x", payload "</1/0>"
REGISTER = bytes.fromhex("42021234a1b2") + bytes([0xB2]) + b"rd" + bytes([0x44]) + b"ep=x" + b"\xff</1/0>"


def test_decode_register_vector() -> None:
    msg = m.decode(REGISTER)
    assert (msg.mtype, msg.code, msg.mid, msg.token) == (m.CON, m.POST, 0x1234, b"\xa1\xb2")
    assert msg.options == ((m.URI_PATH, b"rd"), (m.URI_QUERY, b"ep=x"))
    assert msg.payload == b"</1/0>"
    assert msg.is_request and msg.option_values(m.URI_QUERY) == [b"ep=x"]


def test_encode_piggybacked_created_vector() -> None:
    req = m.decode(REGISTER)
    out = m.piggybacked(req, 0x41, ((m.LOCATION_PATH, b"rd"), (m.LOCATION_PATH, b"Ab3x")))
    # ACK 2.01, same MID and token; Location-Path (8) delta 8 len 2, then delta 0 len 4
    assert out == bytes.fromhex("62411234a1b2") + b"\x82rd" + b"\x04Ab3x"


def test_extended_delta_and_length() -> None:
    value = b"v" * 300  # length 300 -> nibble 14, 300 - 269 = 31
    out = m.encode(m.NON, m.GET, 1, b"", [(m.SIZE1, b"\x05"), (m.URI_PATH, value)])
    assert out[4] == 0xBE and out[5:7] == (31).to_bytes(2, "big")  # Uri-Path (11) first, sorted
    rest = out[7 + 300 :]
    assert rest[0] == 0xD1 and rest[1] == 60 - 11 - 13  # Size1: delta 49 -> nibble 13, 36
    assert m.decode(out).options == ((m.URI_PATH, value), (m.SIZE1, b"\x05"))


@pytest.mark.parametrize(
    "data, why",
    [
        (b"", "shorter"),
        (b"\x40\x02\x00", "shorter"),
        (b"\x80\x02\x00\x01", "version"),
        (b"\x49\x02\x00\x01" + b"t" * 9, "token length"),
        (b"\x48\x02\x00\x01\x01", "token runs"),
        (b"\x40\x02\x00\x02\xbd", "header runs"),
        (b"\x40\x02\x00\x02\xbe\x00", "header runs"),
        (b"\x40\x02\x00\x03\xb5rd", "value runs"),
        (b"\x40\x02\x00\x04\xff", "payload marker"),
        (b"\x40\x02\x00\x05\xf1x", "reserved"),
        (b"\x40\x02\x00\x05\x1fx", "reserved"),
    ],
)
def test_malformed(data: bytes, why: str) -> None:
    with pytest.raises(m.CoapFormatError, match=why):
        m.decode(data)


def test_codes_and_helpers() -> None:
    assert m.code_class(0x84) == "4.04" and m.code_number("2.05") == 0x45
    assert m.uint_option(0) == b"" and m.uint_option(256) == b"\x01\x00"
    assert m.reset(0xBEEF) == b"\x70\x00\xbe\xef"
    assert m.EXCHANGE_LIFETIME == 247.0 and m.NON_LIFETIME == 145.0


# values valid for aiocoap's typed options too: opaque (If-Match, ETag, unknown numbers; not 258, No-Response,
# which aiocoap reads as a uint), text, minimal uint
opaque = st.tuples(st.sampled_from([1, 4, 2048, 65001]), st.binary(max_size=300))
text = st.tuples(st.sampled_from([3, 8, 11, 15]), st.text(max_size=40).map(str.encode).filter(lambda b: len(b) < 256))
uint = st.tuples(st.sampled_from([12, 14, 17, 60]), st.integers(0, 2**32 - 1).map(m.uint_option))
options = st.lists(st.one_of(opaque, text, uint), max_size=6)


@given(
    mtype=st.integers(0, 3),
    code=st.integers(0, 255),
    mid=st.integers(0, 0xFFFF),
    token=st.binary(max_size=8),
    opts=options,
    payload=st.binary(max_size=64),
)
def test_roundtrip_and_aiocoap_agrees(
    mtype: int, code: int, mid: int, token: bytes, opts: list[tuple[int, bytes]], payload: bytes
) -> None:
    data = m.encode(mtype, code, mid, token, opts, payload)
    msg = m.decode(data)
    ordered = tuple(sorted(opts, key=lambda o: o[0]))
    assert (msg.mtype, msg.code, msg.mid, msg.token, msg.options, msg.payload) == (
        mtype, code, mid, token, ordered, payload)  # fmt: skip
    theirs = aiocoap.Message.decode(data)  # an independent decoder reads the same message
    assert (int(theirs.mtype), int(theirs.code), theirs.mid, theirs.token, theirs.payload) == (
        mtype, code, mid, token, payload)  # fmt: skip
    assert [(int(o.number), o.encode()) for o in theirs.opt.option_list()] == list(ordered)


@given(st.binary(max_size=80))
def test_random_bytes_decode_or_raise(data: bytes) -> None:
    try:
        msg = m.decode(data)
    except m.CoapFormatError:
        return
    assert 0 <= msg.mid <= 0xFFFF and len(msg.token) <= 8


# ---- peek: header and token only, for the socket's hand-off ----------------------------------------------
@pytest.mark.parametrize(
    "data, head",
    [
        (REGISTER, (m.CON, m.POST, 0x1234, b"\xa1\xb2")),
        (bytes.fromhex("6045beef"), (m.ACK, 0x45, 0xBEEF, b"")),  # 2.05 ACK, no token, nothing after the header
        (bytes.fromhex("5845000a") + bytes(range(8)) + b"\xff" + b"x", (m.NON, 0x45, 0x000A, bytes(range(8)))),
        (bytes.fromhex("70000001"), (m.RST, 0, 1, b"")),
        (bytes.fromhex("420200") + b"\x03\xa1\xb2\xbd", (m.CON, m.POST, 0x0003, b"\xa1\xb2")),  # options truncated
        (b"\x40\x02\x00\x04\xff", (m.CON, m.POST, 4, b"")),  # a bare payload marker: decode refuses, peek does not
    ],
)
def test_peek_vectors(data: bytes, head: m.Head) -> None:
    assert m.peek(data) == head


@pytest.mark.parametrize(
    "data",
    [b"", b"\x40", b"\x40\x02\x00", b"\x80\x02\x00\x01", b"\x00\x45\x00\x01", b"\xc0\x45\x00\x01",
     b"\x49\x02\x00\x01" + b"t" * 9, b"\x4f\x45\x00\x01" + b"t" * 15, b"\x48\x02\x00\x01\x01", b"\x62\x45\x00\x01\xaa"],
)  # fmt: skip
def test_peek_refuses_what_decode_refuses_in_the_header(data: bytes) -> None:
    assert m.peek(data) is None
    with pytest.raises(m.CoapFormatError, match=r"shorter|version|token"):
        m.decode(data)


def _agrees(data: bytes) -> None:
    """peek and decode agree: same header and token when decode succeeds, None exactly for a header error."""
    head = m.peek(data)
    try:
        msg = m.decode(data)
    except m.CoapFormatError as exc:
        header_error = any(w in str(exc) for w in ("shorter", "version", "token"))
        assert (head is None) == header_error, (data, exc)
        return
    assert head == (msg.mtype, msg.code, msg.mid, msg.token)


@given(st.binary(max_size=40))
def test_peek_agrees_with_decode_on_random_bytes(data: bytes) -> None:
    _agrees(data)


@given(b0=st.integers(0, 255), rest=st.binary(min_size=3, max_size=3), tail=st.binary(max_size=24))
def test_peek_agrees_with_decode_on_any_header(b0: int, rest: bytes, tail: bytes) -> None:
    _agrees(bytes((b0,)) + rest + tail)  # every first byte (version, type, token length) and any tail


@given(
    mtype=st.integers(0, 3),
    code=st.integers(0, 255),
    mid=st.integers(0, 0xFFFF),
    token=st.binary(max_size=8),
    opts=options,
    payload=st.binary(max_size=64),
    cut=st.integers(0, 400),
)
def test_peek_agrees_with_decode_on_truncated_messages(mtype: int, code: int, mid: int, token: bytes,
                                                        opts: list[tuple[int, bytes]], payload: bytes, cut: int
                                                        ) -> None:  # fmt: skip
    data = m.encode(mtype, code, mid, token, opts, payload)
    assert m.peek(data) == (mtype, code, mid, token)
    _agrees(data[:cut])  # cut anywhere: in the header, in the token, in an option, in the payload
