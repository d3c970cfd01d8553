"""TLV byte-exact vectors, derived by hand from the type-byte rules (DESIGN §4), never from the encoder.

Type byte: bits 7-6 kind (00 obj inst, 01 res inst, 10 multiple res, 11 res), bit 5 16-bit id,
bits 4-3 length-field size, bits 2-0 inline length.
"""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.codecs import CodecError
from lwm2m_server.protocol.codecs.tlv import TlvCodec, TlvKind, decode_tlvs, encode_header
from lwm2m_server.protocol.model import ObjectLink, ResourceType
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.synthetic import BIG_ID, MODEL, SYNTH, multi_id, single_id

TLV = TlvCodec()
P = LwM2MPath.parse
OMA = "4f70656e204d6f62696c6520416c6c69616e6365"  # "Open Mobile Alliance", 20 bytes


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def roundtrip(path: str, content: dict[LwM2MPath, object], expected_hex: str) -> None:
    expected = h(expected_hex)
    assert TLV.encode(P(path), content, MODEL) == expected  # type: ignore[arg-type]
    assert TLV.decode(P(path), expected, MODEL) == content


def test_manufacturer_string_with_8bit_length_field() -> None:
    # 11 0 01 000 = c8, id 00, length 0x14 = 20
    roundtrip("/3/0/0", {P("/3/0/0"): "Open Mobile Alliance"}, "c8 00 14" + OMA)
    roundtrip("/3/0", {P("/3/0/0"): "Open Mobile Alliance"}, "c8 00 14" + OMA)


def test_multiple_resource_with_resource_instances() -> None:
    # 01 0 00 001 = 41 per instance; container 10 0 00 110 = 86 (6 bytes of children)
    content = {P("/3/0/6/0"): 1, P("/3/0/6/1"): 5}
    roundtrip("/3/0", content, "86 06 41 00 01 41 01 05")
    roundtrip("/3/0/6", content, "86 06 41 00 01 41 01 05")


def test_single_resource_instance_path() -> None:
    roundtrip("/3/0/6/1", {P("/3/0/6/1"): 5}, "41 01 05")


@pytest.mark.parametrize(
    ("value", "value_hex"),
    [
        (0, "00"),
        (127, "7f"),
        (-1, "ff"),
        (-128, "80"),
        (128, "0080"),
        (300, "012c"),
        (-129, "ff7f"),
        (32767, "7fff"),
        (32768, "00008000"),
        (-32769, "ffff7fff"),
        (2**31, "0000000080000000"),
        (-(2**63), "8000000000000000"),
        (2**63 - 1, "7fffffffffffffff"),
    ],
)
def test_integer_width_is_shortest_of_1_2_4_8(value: int, value_hex: str) -> None:
    n = len(value_hex) // 2
    header = f"c{n:x}" if n <= 7 else "c8"  # 11 0 00 nnn inline, or 11 0 01 000 + 1-byte length
    length = "" if n <= 7 else f"{n:02x}"
    roundtrip("/3/0/9", {P("/3/0/9"): value}, f"{header} 09 {length} {value_hex}")


@pytest.mark.parametrize(
    ("value", "value_hex"),
    [(255, "ff"), (256, "0100"), (65535, "ffff"), (65536, "00010000"), (2**64 - 1, "ffffffffffffffff")],
)
def test_unsigned_uses_unsigned_bytes(value: int, value_hex: str) -> None:
    rid = single_id(ResourceType.UNSIGNED)
    path = f"/{SYNTH}/0/{rid}"
    n = len(value_hex) // 2
    header = f"c{n:x} {rid:02x}" if n <= 7 else f"c8 {rid:02x} 08"
    roundtrip(path, {P(path): value}, f"{header} {value_hex}")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, "c4 03 3fc00000"),  # exactly representable in binary32 -> 4 bytes
        (-2.0, "c4 03 c0000000"),
        (0.1, "c8 03 08 3fb999999999999a"),  # not exact in binary32 -> 8 bytes (binary64)
        (1e300, "c8 03 08 7e37e43c8800759c"),  # overflows binary32 -> 8 bytes
        (float("inf"), "c4 03 7f800000"),
    ],
)
def test_float_four_bytes_when_exact_else_eight(value: float, expected: str) -> None:
    assert single_id(ResourceType.FLOAT) == 3
    roundtrip(f"/{SYNTH}/0/3", {P(f"/{SYNTH}/0/3"): value}, expected)


def test_boolean_objlnk_time_opaque_corelnk() -> None:
    base = f"/{SYNTH}/0"
    b, o, t, d, c = (single_id(x) for x in ("Boolean", "Objlnk", "Time", "Opaque", "Corelnk"))  # type: ignore[arg-type]
    content = {
        P(f"{base}/{d}"): b"\x01\x02",  # opaque  id 5
        P(f"{base}/{b}"): True,  # boolean id 4
        P(f"{base}/{t}"): 1367491215,  # time id 6 -> 4-byte integer 5182428f
        P(f"{base}/{o}"): ObjectLink(3, 0),  # objlnk id 7 -> 0003 0000
        P(f"{base}/{c}"): "</3>",  # corelnk id 8
    }
    roundtrip(base, content, "c1 04 01  c2 05 0102  c4 06 5182428f  c4 07 00030000  c4 08 3c2f333e")


def test_sixteen_bit_resource_id_sets_bit5() -> None:
    # 11 1 00 010 = e2, id 01 2c (300), value "ab"
    path = f"/{SYNTH}/0/{BIG_ID}"
    roundtrip(path, {P(path): "ab"}, "e2 01 2c 6162")


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (7, "c7 05"),  # inline length
        (8, "c8 05 08"),  # 11 0 01 000, 1-byte length
        (255, "c8 05 ff"),
        (256, "d0 05 0100"),  # 11 0 10 000, 2-byte length
        (65535, "d0 05 ffff"),
        (65536, "d8 05 010000"),  # 11 0 11 000, 3-byte length
    ],
)
def test_length_field_sizes(size: int, header: str) -> None:
    path = f"/{SYNTH}/0/5"
    data = bytes(i % 251 for i in range(size))
    encoded = TLV.encode(P(path), {P(path): data}, MODEL)
    assert encoded == h(header) + data
    assert TLV.decode(P(path), encoded, MODEL) == {P(path): data}


def test_object_level_nests_object_instances() -> None:
    # resource TLV c1 00 61 ("a") inside object instance 00 0 00 011 = 03, id 00 / 01
    content = {P(f"/{SYNTH}/0/0"): "a", P(f"/{SYNTH}/1/0"): "b"}
    roundtrip(f"/{SYNTH}", content, "03 00 c1 00 61  03 01 c1 00 62")


def test_object_instance_with_16bit_id_and_length_byte() -> None:
    # children: c1 00 61 (3) + 86 0a 41 00 07 41 01 08 (8) = 11 bytes -> 00 1 01 000 = 28, id 0100, len 0b
    content = {P(f"/{SYNTH}/256/0"): "a", P(f"/{SYNTH}/256/10/0"): "\x07", P(f"/{SYNTH}/256/10/1"): "\x08"}
    assert multi_id(ResourceType.STRING) == 10
    roundtrip(f"/{SYNTH}", content, "28 0100 0b  c1 00 61  86 0a 41 00 07 41 01 08")


# The Device object instance example from the OMA LwM2M 1.0 TLV section, checked field by field by hand.
DEVICE_HEX = " ".join(
    [
        "c8 00 14 " + OMA,  # 0 "Open Mobile Alliance"
        "c8 01 16 4c69676874776569676874204d324d20436c69656e74",  # 1 "Lightweight M2M Client" (22)
        "c8 02 09 333435303030313233",  # 2 "345000123"
        "c3 03 312e30",  # 3 "1.0"
        "86 06 41 00 01 41 01 05",  # 6 power sources [1, 5]
        "88 07 08 42 00 0ed8 42 01 1388",  # 7 voltage [3800, 5000]: 10 0 01 000 + 1-byte length 8
        "87 08 41 00 7d 42 01 0384",  # 8 current [125, 900]
        "c1 09 64",  # 9 battery 100
        "c1 0a 0f",  # 10 memory free 15
        "83 0b 41 00 00",  # 11 error code [0]
        "c4 0d 5182428f",  # 13 current time 1367491215
        "c6 0e 2b30323a3030",  # 14 UTC offset "+02:00"
        "c1 10 55",  # 16 binding "U"
    ]
)
DEVICE_CONTENT = {
    P("/3/0/0"): "Open Mobile Alliance",
    P("/3/0/1"): "Lightweight M2M Client",
    P("/3/0/2"): "345000123",
    P("/3/0/3"): "1.0",
    P("/3/0/6/0"): 1,
    P("/3/0/6/1"): 5,
    P("/3/0/7/0"): 3800,
    P("/3/0/7/1"): 5000,
    P("/3/0/8/0"): 125,
    P("/3/0/8/1"): 900,
    P("/3/0/9"): 100,
    P("/3/0/10"): 15,
    P("/3/0/11/0"): 0,
    P("/3/0/13"): 1367491215,
    P("/3/0/14"): "+02:00",
    P("/3/0/16"): "U",
}


def test_device_object_instance_example() -> None:
    roundtrip("/3/0", DEVICE_CONTENT, DEVICE_HEX)  # type: ignore[arg-type]


def test_device_example_wrapped_in_object_instance() -> None:
    body = h(DEVICE_HEX)
    wrapped = h(f"08 00 {len(body):02x}") + body  # 00 0 01 000: object instance 0, 1-byte length
    assert TLV.encode(P("/3"), DEVICE_CONTENT, MODEL) == wrapped  # type: ignore[arg-type]
    assert TLV.decode(P("/3"), wrapped, MODEL) == DEVICE_CONTENT
    assert TLV.decode(P("/3/0"), wrapped, MODEL) == DEVICE_CONTENT  # object-instance TLV at instance level


def test_single_instance_object_accepts_bare_resources_at_object_level() -> None:
    assert TLV.decode(P("/3"), h("c1 09 64"), MODEL) == {P("/3/0/9"): 100}
    with pytest.raises(CodecError, match="object instances"):
        TLV.decode(P(f"/{SYNTH}"), h("c1 00 61"), MODEL)  # multi-instance object: instance unknown


def test_unknown_resource_decodes_as_opaque_bytes() -> None:
    assert TLV.decode(P("/3/0"), h("c2 63 0102"), MODEL) == {P("/3/0/99"): b"\x01\x02"}
    assert TLV.decode(P("/30000/1"), h("c1 00 61"), MODEL) == {P("/30000/1/0"): b"a"}


def test_header_encoding_table() -> None:
    assert encode_header(TlvKind.OBJECT_INSTANCE, 0, 0) == h("00 00")
    assert encode_header(TlvKind.RESOURCE_INSTANCE, 255, 7) == h("47 ff")
    assert encode_header(TlvKind.MULTIPLE_RESOURCE, 256, 8) == h("a8 0100 08")
    assert encode_header(TlvKind.RESOURCE, 65534, 0x10000) == h("f8 fffe 010000")
    with pytest.raises(CodecError):
        encode_header(TlvKind.RESOURCE, 0, 0x1000000)


def test_decode_structure_tree() -> None:
    tlvs = decode_tlvs(h("08 00 08 86 06 41 00 01 41 01 05"))
    assert [t.kind for t in tlvs] == [TlvKind.OBJECT_INSTANCE]
    (multi,) = tlvs[0].children
    assert (multi.kind, multi.id) == (TlvKind.MULTIPLE_RESOURCE, 6)
    assert [(c.id, c.value) for c in multi.children] == [(0, b"\x01"), (1, b"\x05")]


def test_length_bits_ignored_when_length_field_present() -> None:
    # c9 = 11 0 01 001: inline bits must be ignored when a length field is present
    assert TLV.decode(P("/3/0/9"), h("c9 09 01 64"), MODEL) == {P("/3/0/9"): 100}


def test_old_tlv_number() -> None:
    from lwm2m_server.protocol.codecs import ContentFormat, codec_for

    old = codec_for(ContentFormat.OLD_TLV)
    assert old.content_format == 1542
    assert old.decode(P("/3/0/9"), h("c1 09 64"), MODEL) == {P("/3/0/9"): 100}
