"""LwM2M-CBOR (11544, LwM2M 1.2): byte-exact vectors hand-derived from Transport 7.4.7 (nested maps keyed by
ids or arrays of ids, absolute paths), the accepted equivalent key forms, errors, and round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from lwm2m_server.protocol.codecs import CodecError, ContentFormat, codec_for, decode_root, encode_root
from lwm2m_server.protocol.codecs.lwm2m_cbor import LwM2MCborCodec
from lwm2m_server.protocol.model import Content, ObjectLink, ObjectRegistry
from lwm2m_server.protocol.negotiation import choose_composite_answer, choose_format
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.strategies import path_and_content
from tests.unit.codecs.synthetic import MODEL
from tests.unit.codecs.test_duplicates_and_root import root_content

P = LwM2MPath.parse
CODEC = LwM2MCborCodec()
ACME = "64 41434d45"  # text(4) "ACME"


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def test_registered_under_11544() -> None:
    assert codec_for(11544).name == "lwm2m-cbor" and ContentFormat.LWM2M_CBOR == 11544


def test_instance_vector() -> None:
    # {[3, 0]: {0: "ACME", 9: 95}}
    payload = h(f"a1 82 03 00 a2 00 {ACME} 09 18 5f")
    content = {P("/3/0/0"): "ACME", P("/3/0/9"): 95}
    assert CODEC.encode(P("/3/0"), content, MODEL) == payload
    assert CODEC.decode(P("/3/0"), payload, MODEL) == content


def test_single_resource_and_resource_instance_vectors() -> None:
    assert CODEC.encode(P("/3/0/9"), {P("/3/0/9"): 95}, MODEL) == h("a1 83 03 00 09 18 5f")  # {[3, 0, 9]: 95}
    # {[3, 0, 6]: {0: 1, 1: 5}}: a multiple resource's instances
    multi = {P("/3/0/6/0"): 1, P("/3/0/6/1"): 5}
    assert CODEC.encode(P("/3/0/6"), multi, MODEL) == h("a1 83 03 00 06 a2 00 01 01 05")
    assert CODEC.encode(P("/3/0/6/1"), {P("/3/0/6/1"): 5}, MODEL) == h("a1 84 03 00 06 01 05")
    assert CODEC.decode(P("/3/0/6"), h("a1 83 03 00 06 a2 00 01 01 05"), MODEL) == multi


def test_object_and_root_vectors() -> None:
    # {3: {0: {0: "ACME"}}, 5: {0: {3: 1}}}
    payload = h(f"a2 03 a1 00 a1 00 {ACME} 05 a1 00 a1 03 01")
    content = {P("/3/0/0"): "ACME", P("/5/0/3"): 1}
    assert encode_root(ContentFormat.LWM2M_CBOR, content, MODEL) == payload
    assert decode_root(ContentFormat.LWM2M_CBOR, payload, MODEL) == content
    # {3: {0: {0: "ACME"}, 1: {0: "B"}}} under /3
    two = {P("/3/0/0"): "ACME", P("/3/1/0"): "B"}
    assert CODEC.encode(P("/3"), two, MODEL) == h(f"a1 03 a2 00 a1 00 {ACME} 01 a1 00 61 42")


@pytest.mark.parametrize(
    "payload",
    [
        "a1 03 a1 00 a2 00 64 41434d45 09 18 5f",  # {3: {0: {0: .., 9: ..}}}
        "a2 83 03 00 00 64 41434d45 83 03 00 09 18 5f",  # {[3,0,0]: .., [3,0,9]: ..}
        "a2 82 03 00 a1 00 64 41434d45 83 03 00 09 18 5f",  # {[3,0]: {0: ..}, [3,0,9]: ..}
        "a1 81 03 a1 81 00 a2 81 00 64 41434d45 81 09 18 5f",  # {[3]: {[0]: {[0]: .., [9]: ..}}}
        "bf 82 03 00 bf 00 64 41434d45 09 18 5f ff ff",  # indefinite-length maps
        "a1 82 03 00 a2 00 64 41434d45 09 c4 82 00 18 5f",  # 95 as a tag 4 decimal fraction [0, 95]
    ],
)
def test_equivalent_key_forms_decode_alike(payload: str) -> None:
    assert CODEC.decode(P("/3/0"), h(payload), MODEL) == {P("/3/0/0"): "ACME", P("/3/0/9"): 95}


def test_types() -> None:
    content = {
        P("/40000/0/3"): 1.5,
        P("/40000/0/4"): True,
        P("/40000/0/5"): b"\x01\x02",
        P("/40000/0/7"): ObjectLink(3, 0),
    }
    # {[40000, 0]: {3: 1.5 (float64), 4: true, 5: h'0102', 7: "3:0"}}
    payload = h("a1 82 19 9c40 00 a4 03 fb 3ff8000000000000 04 f5 05 42 0102 07 63 333a30")
    assert CODEC.encode(P("/40000/0"), content, MODEL) == payload
    assert CODEC.decode(P("/40000/0"), payload, MODEL) == content
    # an object the model doesn't know keeps the wire type: {[13, 26]: {1: 42, 2: 4.5}}
    unknown = ObjectRegistry.default()
    assert CODEC.decode(P("/13/26"), h("a1 82 0d 18 1a a2 01 18 2a 02 f9 4480"), unknown) == {
        P("/13/26/1"): 42,
        P("/13/26/2"): 4.5,
    }


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        ("/3/0", "a2 83 03 00 09 01 82 03 00 a1 09 02", "duplicate path /3/0/9"),  # {[3,0,9]: 1, [3,0]: {9: 2}}
        ("/3/0", "a1 82 03 00 09", "not at a resource"),  # {[3, 0]: 9}
        ("/3/0", "a1 85 03 00 09 00 00 01", "deeper than a resource instance"),
        ("/3/0", "a1 82 03 00 a1 61 78 01", "not a path id"),  # {[3, 0]: {"x": 1}}
        ("/3/0", "a1 82 03 00 a1 09 f6", "null"),
        ("/3/0", "a1 82 05 00 a1 03 01", "outside the request path /3/0"),
        ("/3/0", "a1 82 03 00 a0", "empty map"),
        ("/3/0", "81 01", "must be a CBOR map"),
        ("/3/0", "a1 83 03 00 09 63 616263", "numeric value expected"),  # wrong type for battery level
        ("/3/0", "a1 82 03 00 a1 09 c4 82 20 19 03bb", "not an integer"),  # 95.5 for an Integer
    ],
)
def test_errors(path: str, payload: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        CODEC.decode(P(path), h(payload), MODEL)


def test_negotiated_for_1_2_clients_only() -> None:
    formats = frozenset({110, 112, 11542, 11544})
    assert choose_format(P("/3/0"), "1.2", formats, MODEL) == ContentFormat.LWM2M_CBOR
    assert choose_format(P("/3/0"), "1.1", formats, MODEL) == ContentFormat.SENML_CBOR
    assert choose_format(P("/3/0"), "1.2", frozenset({110, 112}), MODEL) == ContentFormat.SENML_CBOR
    assert choose_composite_answer("1.2", formats, 112) == ContentFormat.LWM2M_CBOR
    assert choose_composite_answer("1.1", formats, 112) == 112


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=path_and_content())
def test_round_trip(case: tuple[LwM2MPath, Content]) -> None:
    path, content = case
    decoded = CODEC.decode(path, CODEC.encode(path, content, MODEL), MODEL)
    assert decoded == content
    assert all(type(decoded[k]) is type(v) for k, v in content.items())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=root_content())
def test_root_round_trip(content: Content) -> None:
    assert CODEC.decode_root(CODEC.encode_root(content, MODEL), MODEL) == content
