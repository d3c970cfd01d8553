"""Issue 12 codec rules: duplicates are an error, root/composite payloads with absolute names, SenML base
fields per record (bn, bt carried, bn ending in '/', CBOR number forms incl. tag 4), LwM2M-JSON absolute
names without bn, TLV answers wrapped in their object instance. Byte-exact vectors, then properties."""

from __future__ import annotations

import json

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m_server.protocol.codecs import CodecError, ContentFormat, decode_root, encode_root, root_codec_for
from lwm2m_server.protocol.codecs.lwm2m_json import LwM2MJsonCodec
from lwm2m_server.protocol.codecs.senml import TimedValue
from lwm2m_server.protocol.codecs.senml_cbor import SenmlCborCodec
from lwm2m_server.protocol.codecs.senml_json import SenmlJsonCodec
from lwm2m_server.protocol.codecs.tlv import TlvCodec
from lwm2m_server.protocol.composite import decode_paths, encode_paths
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.strategies import OBJECTS, instance_content, small_ids
from tests.unit.codecs.synthetic import MODEL

P = LwM2MPath.parse
TLV = TlvCodec()
CBOR = SenmlCborCodec()
SJSON = SenmlJsonCodec()
LJSON = LwM2MJsonCodec()
ROOT_FORMATS = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.LWM2M_JSON)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# ---- duplicates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        ("/3/0", "c1 09 05 c1 09 06", "/3/0/9: the same resource appears twice"),  # resource 9 twice
        ("/3/0", "86 06 41 00 01 41 00 05", "/3/0/6/0: the same resource instance appears twice"),
        ("/3/0", "83 06 41 00 01 83 06 41 01 05", "/3/0/6: the same resource appears twice"),  # split multiple
        ("/3", "03 00 c1 09 05 03 00 c1 0a 06", "/3/0: the same object instance appears twice"),
        ("/3/0/6", "41 00 01 41 00 02", "/3/0/6/0: the same resource instance appears twice"),
    ],
)
def test_tlv_duplicates_are_errors(path: str, payload: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        TLV.decode(P(path), h(payload), MODEL)


def test_tlv_distinct_ids_still_decode() -> None:
    assert TLV.decode(P("/3/0"), h("86 06 41 00 01 41 01 05"), MODEL) == {P("/3/0/6/0"): 1, P("/3/0/6/1"): 5}


@pytest.mark.parametrize(
    "payload",
    [
        b'[{"bn":"/3/0/","n":"9","v":5},{"n":"9","v":6}]',
        b'[{"bn":"/3/0/","n":"9","v":5},{"bn":"/3/0/9","v":6}]',  # same path after name resolution
        b'[{"bn":"/3/","n":"0/9","v":5},{"bn":"/3/0/","n":"9","v":6}]',
    ],
)
def test_senml_json_duplicate_paths_are_errors(payload: bytes) -> None:
    with pytest.raises(CodecError, match="duplicate path /3/0/9"):
        SJSON.decode(P("/3/0"), payload, MODEL)
    with pytest.raises(CodecError, match="duplicate path /3/0/9"):
        SJSON.decode_root(payload, MODEL)


def test_senml_cbor_duplicate_path_is_error() -> None:
    # [{-2: "/3/0/", 0: "9", 2: 5}, {0: "9", 2: 6}]
    payload = h("82 a3 21 65 2f332f302f 00 61 39 02 05 a2 00 61 39 02 06")
    with pytest.raises(CodecError, match="record 1: duplicate path /3/0/9"):
        CBOR.decode(P("/3/0"), payload, MODEL)


def test_lwm2m_json_duplicate_path_is_error() -> None:
    with pytest.raises(CodecError, match="entry 1: duplicate path /3/0/9"):
        LJSON.decode(P("/3/0"), b'{"bn":"/3/0/","e":[{"n":"9","v":5},{"n":"9","v":6}]}', MODEL)


def test_send_allows_one_path_at_different_times_only() -> None:
    pack = b'[{"bn":"/3/0/","n":"9","v":5,"t":1700000000},{"n":"9","v":6,"t":1700000060}]'
    assert SJSON.decode_timed(pack, MODEL) == [
        TimedValue(P("/3/0/9"), 5, 1700000000.0),
        TimedValue(P("/3/0/9"), 6, 1700000060.0),
    ]
    with pytest.raises(CodecError, match="duplicate path /3/0/9 at time 1700000000"):
        SJSON.decode_timed(b'[{"bn":"/3/0/","bt":1700000000,"n":"9","v":5},{"n":"9","v":6}]', MODEL)
    with pytest.raises(CodecError, match="duplicate path"):  # plain content has no room for two values
        SJSON.decode_root(pack, MODEL)


# ---- root / composite --------------------------------------------------------------------------

COMPOSITE = {P("/3/0/0"): "ACME", P("/3/0/9"): 95, P("/5/0/3"): 1, P("/32001/0/0"): 7}


def test_senml_json_root_vector() -> None:
    payload = b'[{"n":"/3/0/0","vs":"ACME"},{"n":"/3/0/9","v":95},{"n":"/5/0/3","v":1},{"n":"/32001/0/0","v":7}]'
    assert encode_root(ContentFormat.SENML_JSON, COMPOSITE, MODEL) == payload
    assert decode_root(ContentFormat.SENML_JSON, payload, MODEL) == COMPOSITE


def test_senml_cbor_root_vector() -> None:
    # [{0: "/3/0/0", 3: "ACME"}, {0: "/3/0/9", 2: 95}]
    payload = h("82 a2 00 66 2f332f302f30 03 64 41434d45 a2 00 66 2f332f302f39 02 18 5f")
    content = {P("/3/0/0"): "ACME", P("/3/0/9"): 95}
    assert encode_root(ContentFormat.SENML_CBOR, content, MODEL) == payload
    assert decode_root(ContentFormat.SENML_CBOR, payload, MODEL) == content


def test_lwm2m_json_root_vector() -> None:
    payload = b'{"bn":"/","e":[{"n":"3/0/0","sv":"ACME"},{"n":"5/0/3","v":1}]}'
    content = {P("/3/0/0"): "ACME", P("/5/0/3"): 1}
    assert encode_root(ContentFormat.LWM2M_JSON, content, MODEL) == payload
    assert decode_root(ContentFormat.LWM2M_JSON, payload, MODEL) == content


def test_root_bn_per_record_and_trailing_slash() -> None:
    # Leshan / Anjay style: a new bn (ending in '/') per object, names relative to it
    payload = (
        b'[{"bn":"/3/0/","n":"0","vs":"ACME"},{"n":"9","v":95},{"bn":"/5/0/","n":"3","v":1},{"bn":"/32001/0/0","v":7}]'
    )
    assert SJSON.decode_root(payload, MODEL) == COMPOSITE


def test_root_rejects_non_leaf_and_single_path_formats() -> None:
    with pytest.raises(CodecError, match="not a resource or resource-instance path"):
        SJSON.decode_root(b'[{"n":"/3/0","v":1}]', MODEL)
    with pytest.raises(CodecError, match="tlv cannot carry content for the root"):
        root_codec_for(ContentFormat.TLV)


def test_bt_carries_to_later_records_and_t_adds() -> None:
    pack = b'[{"bn":"/3/0/","bt":1700000000,"n":"9","v":5},{"n":"10","v":60,"t":30},{"bt":1700000100,"n":"20","v":1}]'
    assert SJSON.decode_timed(pack, MODEL) == [
        TimedValue(P("/3/0/9"), 5, 1700000000.0),
        TimedValue(P("/3/0/10"), 60, 1700000030.0),
        TimedValue(P("/3/0/20"), 1, 1700000100.0),
    ]


def test_relative_time_is_relative_to_now() -> None:
    assert TimedValue(P("/3/0/9"), 5, -60.0).epoch_time(1_700_000_000.0) == 1_699_999_940.0
    assert TimedValue(P("/3/0/9"), 5, 1_600_000_000.0).epoch_time(1_700_000_000.0) == 1_600_000_000.0
    assert TimedValue(P("/3/0/9"), 5).epoch_time(1_700_000_000.0) == 1_700_000_000.0


@pytest.mark.parametrize(
    ("bt_item", "expected"),
    [
        ("1a 6553f100", 1700000000.0),  # uint32
        ("fb 41d954fc40000000", 1700000000.0),  # float64
        ("fa 4eca a7e2"[:0] + "fa 4ecaa7e2", float(cbor2.loads(h("fa 4ecaa7e2")))),  # float32
        ("f9 3c00", 1.0),  # float16 (relative time 1 s)
        ("c4 82 20 19 3039", 1234.5),  # tag 4 decimal fraction [-1, 12345] = 1234.5
        ("c4 82 00 1a 6553f100", 1700000000.0),  # tag 4 with exponent 0
        ("c2 44 6553f100", 1700000000.0),  # tag 2 bignum
        ("c5 82 01 19 0c35", 6250.0),  # tag 5 bigfloat [1, 3125] = 6250
    ],
)
def test_cbor_base_time_in_any_number_form(bt_item: str, expected: float) -> None:
    # [{-2: "/3/0/9", -3: <bt>, 2: 5}]
    payload = h("81 a3 21 66 2f332f302f39 22" + bt_item + "02 05")
    assert CBOR.decode_timed(payload, MODEL) == [TimedValue(P("/3/0/9"), 5, expected)]


def test_cbor_decimal_value_for_float_resource() -> None:
    # [{-2: "/3/0/9"... battery level is Integer: 4(-1, 955) = 95.5 is not an integer
    with pytest.raises(CodecError, match="not an integer"):
        CBOR.decode(P("/3/0/9"), h("81 a2 21 66 2f332f302f39 02 c4 82 20 19 03bb"), MODEL)
    assert CBOR.decode(P("/3/0/9"), h("81 a2 21 66 2f332f302f39 02 c4 82 20 19 03b6"), MODEL) == {P("/3/0/9"): 95}


# ---- LwM2M-JSON absolute names -------------------------------------------------------------------


def test_lwm2m_json_absolute_names_without_bn() -> None:
    payload = b'{"e":[{"n":"/3/0/0","sv":"ACME"},{"n":"/3/0/9","v":95}]}'
    assert LJSON.decode(P("/3/0"), payload, MODEL) == {P("/3/0/0"): "ACME", P("/3/0/9"): 95}
    assert LJSON.decode_root(payload, MODEL) == {P("/3/0/0"): "ACME", P("/3/0/9"): 95}
    with pytest.raises(CodecError, match="outside the request path"):
        LJSON.decode(P("/5/0"), payload, MODEL)


def test_lwm2m_json_relative_names_without_bn_still_work() -> None:
    assert LJSON.decode(P("/3/0"), b'{"e":[{"n":"0","sv":"ACME"}]}', MODEL) == {P("/3/0/0"): "ACME"}
    assert LJSON.decode(P("/3/0/9"), b'{"e":[{"v":95}]}', MODEL) == {P("/3/0/9"): 95}


# ---- TLV wrapped single resource -----------------------------------------------------------------


def test_tlv_resource_wrapped_in_its_instance_is_accepted() -> None:
    # 08 00 03 | c1 09 5f : object instance 0 holding resource 9 = 95
    assert TLV.decode(P("/3/0/9"), h("08 00 03 c1 09 5f"), MODEL) == {P("/3/0/9"): 95}
    # multiple resource 6 inside instance 0
    assert TLV.decode(P("/3/0/6"), h("08 00 05 83 06 41 00 01"), MODEL) == {P("/3/0/6/0"): 1}
    # resource instance 6/1 inside instance 0 and multiple resource 6
    assert TLV.decode(P("/3/0/6/1"), h("08 00 05 83 06 41 01 05"), MODEL) == {P("/3/0/6/1"): 5}


@pytest.mark.parametrize(
    ("path", "payload", "message"),
    [
        ("/3/0/9", "08 01 03 c1 09 5f", "wraps the answer in object instance 1"),
        ("/3/0/9", "08 00 03 c1 0a 5f", "not resource 9"),
        ("/3/0/6/1", "08 00 05 83 07 41 01 05", "wraps the answer in resource 7"),
    ],
)
def test_tlv_wrapper_for_another_instance_is_an_error(path: str, payload: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        TLV.decode(P(path), h(payload), MODEL)


# ---- composite path list ---------------------------------------------------------------------------


def test_path_list_vectors() -> None:
    paths = [P("/3/0/0"), P("/1/0")]
    assert encode_paths(ContentFormat.SENML_JSON, paths) == b'[{"n":"/3/0/0"},{"n":"/1/0"}]'
    assert encode_paths(ContentFormat.SENML_CBOR, paths) == h("82 a1 00 66 2f332f302f30 a1 00 64 2f312f30")
    for cf in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR):
        assert decode_paths(cf, encode_paths(cf, paths)) == paths
    assert decode_paths(ContentFormat.SENML_JSON, b'[{"bn":"/3/0/","n":"0"},{"n":"9"}]') == [P("/3/0/0"), P("/3/0/9")]
    with pytest.raises(CodecError, match="duplicate path /3/0/0"):
        decode_paths(ContentFormat.SENML_JSON, b'[{"n":"/3/0/0"},{"bn":"/3/0/","n":"0"}]')


# ---- properties --------------------------------------------------------------------------------------


@st.composite
def root_content(draw: st.DrawFn) -> Content:
    """Content over 1..3 objects of the model, each with 1..2 instances."""
    out: Content = {}
    for object_id in draw(st.lists(st.sampled_from(OBJECTS), min_size=1, max_size=3, unique=True)):
        for inst in draw(st.sets(small_ids, min_size=1, max_size=2)):
            out |= draw(instance_content(LwM2MPath(object_id, inst)))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=root_content(), cf=st.sampled_from(ROOT_FORMATS))
def test_composite_round_trip(content: Content, cf: int) -> None:
    decoded = decode_root(cf, encode_root(cf, content, MODEL), MODEL)
    assert decoded == content
    for key, value in content.items():
        assert type(decoded[key]) is type(value), key


def _duplicate_senml_json(payload: bytes, index: int, relative: bool) -> bytes:
    records = json.loads(payload)
    record = dict(records[index % len(records)])
    name = record.pop("n")
    if relative:  # the same path spelled as bn + n
        head, _, tail = name.rpartition("/")
        record |= {"bn": head + "/", "n": tail}
    else:
        record["n"] = name
    if index % 2 and "v" in record:
        record["v"] = 0  # a different value: still the same path
    return json.dumps([*records, record]).encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=root_content(), index=st.integers(0, 50), relative=st.booleans())
def test_duplicates_never_decode(content: Content, index: int, relative: bool) -> None:
    if not content:
        return
    payload = encode_root(ContentFormat.SENML_JSON, content, MODEL)
    duplicated = _duplicate_senml_json(payload, index, relative)
    with pytest.raises(CodecError, match="duplicate path"):
        decode_root(ContentFormat.SENML_JSON, duplicated, MODEL)
    cbor_records = [{ {"bn": -2, "n": 0, "v": 2, "vs": 3, "vb": 4, "vd": 8}.get(k, k): v for k, v in r.items()}
                    for r in json.loads(duplicated)]  # fmt: skip
    for r in cbor_records:
        if 8 in r:
            r[8] = SJSON.records(json.dumps([{"vd": r[8]}]).encode(), None)[0]["vd"]
    with pytest.raises(CodecError, match="duplicate path"):
        decode_root(ContentFormat.SENML_CBOR, cbor2.dumps(cbor_records), MODEL)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=root_content(), index=st.integers(0, 50))
def test_tlv_duplicate_resources_never_decode(content: Content, index: int) -> None:
    instances = sorted({k.truncate("instance") for k in content})
    if not instances:
        return
    instance = instances[index % len(instances)]
    part = {k: v for k, v in content.items() if instance.is_prefix_of(k)}
    payload = TLV.encode(instance, part, MODEL)
    with pytest.raises(CodecError, match="appears twice"):
        TLV.decode(instance, payload + payload, MODEL)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=root_content(), data=st.data())
def test_bn_per_record_and_bt_resolve_like_absolute_names(content: Content, data: st.DataObject) -> None:
    """Any split of each absolute name into a bn ending in '/' (set on that record, or inherited) plus n, and
    any bt/t split of a time, decodes to the same values and times."""
    if not content:
        return
    records = json.loads(encode_root(ContentFormat.SENML_JSON, content, MODEL))
    current_bn = ""
    rewritten = []
    for record in records:
        name = record.pop("n")
        segments = name.strip("/").split("/")
        cut = data.draw(st.integers(0, len(segments) - 1))
        bn = "/" + "/".join(segments[:cut]) + "/" if cut else "/"
        if bn != current_bn or data.draw(st.booleans()):
            record["bn"] = current_bn = bn
        record["n"] = "/".join(segments[cut:])
        bt = data.draw(st.integers(1_600_000_000, 1_700_000_000))
        record |= {"bt": bt, "t": 1_700_000_000 - bt}
        rewritten.append(record)
    payload = json.dumps(rewritten).encode()
    assert decode_root(ContentFormat.SENML_JSON, payload, MODEL) == content
    timed = SJSON.decode_timed(payload, MODEL)
    assert {v.path: v.value for v in timed} == content and {v.time for v in timed} == {1_700_000_000.0}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=root_content(), index=st.integers(0, 50))
def test_lwm2m_json_and_cbor_duplicates_never_decode(content: Content, index: int) -> None:
    if not content:
        return
    doc = json.loads(encode_root(ContentFormat.LWM2M_JSON, content, MODEL))
    doc["e"].append(doc["e"][index % len(doc["e"])])
    with pytest.raises(CodecError, match="duplicate path"):
        decode_root(ContentFormat.LWM2M_JSON, json.dumps(doc).encode(), MODEL)
    # LwM2M-CBOR: the same leaf again under a full-path array key next to the nested maps
    key = sorted(content)[index % len(content)]
    tree = cbor2.loads(encode_root(ContentFormat.LWM2M_CBOR, content, MODEL))
    tree[tuple(key.ids)] = 0  # paths are checked for duplicates before values are typed
    with pytest.raises(CodecError, match="duplicate path"):
        decode_root(ContentFormat.LWM2M_CBOR, cbor2.dumps(tree), MODEL)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=root_content(), index=st.integers(0, 50), other=st.integers(1, 50))
def test_tlv_wrapped_resource_decodes_only_for_its_instance(content: Content, index: int, other: int) -> None:
    if not content:
        return
    key = sorted(content)[index % len(content)]
    resource = key.truncate("resource")
    part = {k: v for k, v in content.items() if resource.is_prefix_of(k)}
    wrapped = TLV.encode(resource.truncate("object"), part, MODEL)  # the resource inside its object-instance TLV
    assert TLV.decode(resource, wrapped, MODEL) == part
    assert TLV.decode(resource, TLV.encode(resource, part, MODEL), MODEL) == part
    wrong = LwM2MPath(resource.object_id, ((resource.object_instance or 0) + other) % 65535, resource.resource_id)
    with pytest.raises(CodecError):
        TLV.decode(wrong, wrapped, MODEL)
