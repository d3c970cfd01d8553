"""SenML-CBOR / SenML-JSON byte-exact vectors, hand-derived from RFC 8428 + the LwM2M label rules.

CBOR labels: bn -2 (0x21), bt -3 (0x22), n 0, v 2, vs 3, vb 4, t 6, vd 8, and the text key "vlo".
"""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.codecs import CodecError
from lwm2m_server.protocol.codecs.senml_cbor import SenmlCborCodec
from lwm2m_server.protocol.codecs.senml_json import SenmlJsonCodec
from lwm2m_server.protocol.model import ObjectLink
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.synthetic import MODEL

CBOR = SenmlCborCodec()
JSON = SenmlJsonCodec()
P = LwM2MPath.parse
OMA = "4f70656e204d6f62696c6520416c6c69616e6365"  # "Open Mobile Alliance" (20 bytes -> text header 0x74)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def test_cbor_manufacturer_at_instance_path() -> None:
    # [{-2: "/3/0/", 0: "0", 3: "Open Mobile Alliance"}]
    expected = h("81 a3 21 65 2f332f302f 00 61 30 03 74" + OMA)
    content = {P("/3/0/0"): "Open Mobile Alliance"}
    assert CBOR.encode(P("/3/0"), content, MODEL) == expected
    assert CBOR.decode(P("/3/0"), expected, MODEL) == content


def test_cbor_single_value_uses_full_base_name() -> None:
    # [{-2: "/3/0/0", 3: "Open Mobile Alliance"}]
    expected = h("81 a2 21 66 2f332f302f30 03 74" + OMA)
    content = {P("/3/0/0"): "Open Mobile Alliance"}
    assert CBOR.encode(P("/3/0/0"), content, MODEL) == expected
    assert CBOR.decode(P("/3/0/0"), expected, MODEL) == content


EVERY_TYPE = {
    P("/40000/0/0"): "a",
    P("/40000/0/1"): -5,
    P("/40000/0/2"): 1000,
    P("/40000/0/3"): 1.5,
    P("/40000/0/4"): True,
    P("/40000/0/5"): b"\x01\x02",
    P("/40000/0/6"): 1700000000,
    P("/40000/0/7"): ObjectLink(3, 0),
    P("/40000/0/8"): "</3>",
    P("/40000/0/10/1"): "x",
}
EVERY_TYPE_CBOR = h(
    """
    8a
    a3 21 69 2f34303030302f302f 00 61 30 03 61 61
    a2 00 61 31 02 24
    a2 00 61 32 02 19 03e8
    a2 00 61 33 02 fb 3ff8000000000000
    a2 00 61 34 04 f5
    a2 00 61 35 08 42 0102
    a2 00 61 36 02 1a 6553f100
    a2 00 61 37 63 766c6f 63 333a30
    a2 00 61 38 03 64 3c2f333e
    a2 00 64 31302f31 03 61 78
    """
)


def test_cbor_every_value_label() -> None:
    assert CBOR.encode(P("/40000/0"), EVERY_TYPE, MODEL) == EVERY_TYPE_CBOR  # type: ignore[arg-type]
    assert CBOR.decode(P("/40000/0"), EVERY_TYPE_CBOR, MODEL) == EVERY_TYPE


def test_cbor_base_name_persists_and_changes() -> None:
    payload = h(
        """
        85
        a4 21 65 2f332f302f 22 19 03e8 00 61 30 03 64 41434d45
        a3 00 61 39 02 18 5f 06 24
        a3 21 67 2f332f302f362f 00 61 30 02 01
        a2 00 61 31 02 05
        a2 21 67 2f332f302f3133 02 1a 6553f100
        """
    )
    # bn "/3/0/" (+bt 1000), then n "9" (+t -5), bn "/3/0/6/" + "0", same bn + "1", bn "/3/0/13" with no n
    assert CBOR.decode(P("/3/0"), payload, MODEL) == {
        P("/3/0/0"): "ACME",
        P("/3/0/9"): 95,
        P("/3/0/6/0"): 1,
        P("/3/0/6/1"): 5,
        P("/3/0/13"): 1700000000,
    }
    assert CBOR.decode(P("/3"), payload, MODEL)[P("/3/0/9")] == 95  # any prefix of the names works


def test_cbor_unknown_resources_typed_by_label() -> None:
    payload = h(
        """
        84
        a3 21 69 2f33303030302f302f 00 61 31 04 f4
        a2 00 61 32 08 41 ff
        a2 00 61 33 63 766c6f 63 353a31
        a2 00 61 34 02 f9 4100
        """
    )
    assert CBOR.decode(P("/30000/0"), payload, MODEL) == {
        P("/30000/0/1"): False,
        P("/30000/0/2"): b"\xff",
        P("/30000/0/3"): ObjectLink(5, 1),
        P("/30000/0/4"): 2.5,  # half-precision float
    }


def test_cbor_unknown_positive_label_is_ignored() -> None:
    assert CBOR.decode(P("/3/0/9"), h("81 a3 21 66 2f332f302f39 02 01 09 00"), MODEL) == {P("/3/0/9"): 1}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("81 a4 21 65 2f332f302f 00 61 39 02 01 62 785f 01", "must-understand"),  # "x_": 1
        ("81 a3 21 66 2f332f302f39 02 01 26 00", "unknown base label -7"),
        ("81 a2 21 66 2f332f302f39 03 61 61", "label vs does not fit"),  # vs for an Integer resource
        ("81 a2 21 66 2f332f302f30 02 01", "label v does not fit"),  # v for a String resource
        ("81 a2 21 66 2f342f302f30 02 01", "outside the request path"),  # /4/0/0 under /3/0
        ("81 a3 21 66 2f332f302f39 02 01 03 61 61", "more than one value label"),
        ("81 a2 21 65 2f332f302f 00 61 39", "has no value"),
        ("81 a2 21 01 02 01", "bn must be a string"),
        ("81 a2 02 01 02 02", "malformed CBOR"),  # duplicate map key
        ("81 a1 21 66 2f332f302f39 00", "trailing"),
        ("a1 00 61 30", "array of records"),
        ("81 01", "not a CBOR map"),
        ("81 a2 21 66 2f332f302f39 02 f9 3e00", "not an integer"),  # 1.5 for an Integer resource
        ("81 a2 21 66 2f332f302f39 02 f5", "v must be a number"),  # true under v
        ("81 a2 21 64 2f332f30 02 01", "not a resource"),  # an instance path with a value
        ("81 a2 21 66 2f332f302f78 02 01", "bad name"),  # "/3/0/x"
        ("81 a2 21 66 2f332f302f39 02 1b ffffffffffffffff", "out of range"),  # 2^64-1 for a signed Integer
        ("81 a2 21 67 2f332f302f3939 02 3b ffffffffffffffff", "does not fit 64 bits"),  # -2^64, unknown /3/0/99
    ],
)
def test_cbor_rejections(payload: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CBOR.decode(P("/3/0"), h(payload), MODEL)


def test_cbor_rejects_non_utf8_text() -> None:
    with pytest.raises(CodecError, match="malformed CBOR"):
        CBOR.decode(P("/3/0/0"), h("81 a2 21 66 2f332f302f30 03 62 fffe"), MODEL)


# ---- SenML-JSON ------------------------------------------------------------------------------------

EVERY_TYPE_JSON = (
    b'[{"bn":"/40000/0/","n":"0","vs":"a"},{"n":"1","v":-5},{"n":"2","v":1000},{"n":"3","v":1.5},'
    b'{"n":"4","vb":true},{"n":"5","vd":"AQI"},{"n":"6","v":1700000000},{"n":"7","vlo":"3:0"},'
    b'{"n":"8","vs":"</3>"},{"n":"10/1","vs":"x"}]'
)


def test_json_every_value_label() -> None:
    assert JSON.encode(P("/40000/0"), EVERY_TYPE, MODEL) == EVERY_TYPE_JSON  # type: ignore[arg-type]
    assert JSON.decode(P("/40000/0"), EVERY_TYPE_JSON, MODEL) == EVERY_TYPE


def test_json_vd_is_base64url_without_padding() -> None:
    # 0xfb 0xff: standard base64 "+/8=", URL-safe "-_8", padding dropped
    path = P("/40000/0/5")
    assert JSON.encode(path, {path: b"\xfb\xff"}, MODEL) == b'[{"bn":"/40000/0/5","vd":"-_8"}]'
    assert JSON.decode(path, b'[{"bn":"/40000/0/5","vd":"-_8"}]', MODEL) == {path: b"\xfb\xff"}
    assert JSON.decode(path, b'[{"bn":"/40000/0/5","vd":"-_8="}]', MODEL) == {path: b"\xfb\xff"}
    for bad in (b"+/8", b"A", b"AQ=I", b"*"):
        with pytest.raises(CodecError, match="base64"):
            JSON.decode(path, b'[{"bn":"/40000/0/5","vd":"' + bad + b'"}]', MODEL)


def test_json_resolution_and_ignored_labels() -> None:
    payload = (
        b'[{"bn":"/3/0/","bt":1.7e9,"n":"0","vs":"ACME","u":"x"},{"n":"9","v":95.0,"t":-5},'
        b'{"bn":"/3/0/6/","n":"0","v":1},{"n":"1","v":5,"future":1}]'
    )
    assert JSON.decode(P("/3/0"), payload, MODEL) == {
        P("/3/0/0"): "ACME",
        P("/3/0/9"): 95,  # integral float accepted for an Integer resource
        P("/3/0/6/0"): 1,
        P("/3/0/6/1"): 5,
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'[{"bn":"/3/0/9","v":1,"x_":1}]', "must-understand"),
        (b'[{"bn":"/3/0/9","vs":"1"}]', "label vs does not fit"),
        (b'[{"bn":"/3/0/9","v":1,"bn":"/3/0/9"}]', "duplicate JSON key"),
        (b'[{"bn":"/3/0/9","v":NaN}]', "NaN"),
        (b'[{"bn":"/3/0/9","v":1}', "malformed JSON"),
        (b'{"bn":"/3/0/9","v":1}', "array of records"),
        (b'[{"bn":"/3/0/0","vs":"\xff"}]', "UTF-8"),
        (b'[{"bn":"/3/0/9","v":1,"t":"now"}]', "t must be a number"),
        (b'[{"bn":"/3/0/9","v":1e400}]', "not an integer"),
        (b'[{"bn":"/3/0/9","v":' + b"9" * 5000 + b"}]", "malformed JSON"),
        (b"[" * 100_000, "malformed JSON"),
    ],
)
def test_json_rejections(payload: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        JSON.decode(P("/3/0"), payload, MODEL)


def test_json_encode_rejects_non_finite_float() -> None:
    path = P("/40000/0/3")
    with pytest.raises(CodecError, match="JSON"):
        JSON.encode(path, {path: float("inf")}, MODEL)
