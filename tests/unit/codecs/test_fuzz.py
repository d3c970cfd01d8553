"""Untrusted input: every decoder returns content or raises CodecError, never anything else, and fast."""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Iterator

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m_server.protocol.codecs import CONTENT_FORMATS, MAX_PAYLOAD_BYTES, MAX_RECORDS, CodecError, codec_for
from lwm2m_server.protocol.codecs.base import Codec
from lwm2m_server.protocol.model import Content, ObjectLink
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.strategies import path_and_content, single_value
from tests.unit.codecs.synthetic import MODEL

CALL_BUDGET_S = 0.05
"""Per-call CPU-time budget (this thread's CPU time: neither a busy shared CI machine nor another thread of the test
process, such as a store writer left by an earlier test, makes it flaky)."""
PATHS = [LwM2MPath.parse(p) for p in ("/3", "/3/0", "/3/0/0", "/3/0/6", "/3/0/6/1", "/5/0/0", "/40000/0/7", "/30000")]
CODECS = sorted(CONTENT_FORMATS.values(), key=lambda c: c.content_format)


@contextlib.contextmanager
def no_collector() -> Iterator[None]:
    """The budget bounds the decoder's own work: a full collection that happens to start inside the call (a
    worker that ran the TensorFlow tests has a large heap: 217 ms of one, in CI) is not the decoder's."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_bounded(codec: Codec, path: LwM2MPath, payload: bytes, budget: float = CALL_BUDGET_S) -> Content | None:
    with no_collector():
        start = time.thread_time()
        try:
            result = codec.decode(path, payload, MODEL)
        except CodecError as exc:
            assert str(exc)  # always a message
            result = None
        elapsed = time.thread_time() - start
    assert elapsed < budget, f"{codec.name} took {elapsed * 1000:.1f} ms on {len(payload)} bytes"
    if result is not None:
        assert isinstance(result, dict)
        assert all(isinstance(k, LwM2MPath) and path.is_prefix_of(k) for k in result)
    return result


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=600), path=st.sampled_from(PATHS))
def test_random_bytes(codec: Codec, payload: bytes, path: LwM2MPath) -> None:
    decode_bounded(codec, path, payload)


@st.composite
def mutated(draw: st.DrawFn, cf: int) -> tuple[LwM2MPath, bytes]:
    """A valid encoding with a truncation, byte flips or an insertion: reaches deep decoder paths."""
    single = cf in (0, 42, 60)
    path, content = draw(single_value() if single else path_and_content())
    try:
        payload = bytearray(codec_for(cf).encode(path, content, MODEL))
    except CodecError:
        payload = bytearray()
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["cut", "flip", "insert"]))
        pos = draw(st.integers(0, len(payload)))
        if op == "cut":
            del payload[pos:]
        elif op == "flip" and pos < len(payload):
            payload[pos] ^= draw(st.integers(1, 255))
        else:
            payload[pos:pos] = draw(st.binary(min_size=1, max_size=3))
    return path, bytes(payload)


@pytest.mark.parametrize("cf", [0, 42, 60, 110, 112, 11542, 11543], ids=str)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_valid_payloads(cf: int, data: st.DataObject) -> None:
    path, payload = data.draw(mutated(cf))
    decode_bounded(codec_for(cf), path, payload)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        ["/3/0/", "/3/0/0", "0", "9", "6/1", "3:0", "AQI", "bn", "n", "v", "vs", "vb", "vd", "vlo", "e", "sv"]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["bn", "bt", "n", "t", "v", "vs", "vb", "vd", "vlo", "e", "sv", "bv", "ov", "x_", "u"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values, path=st.sampled_from(PATHS), cf=st.sampled_from([110, 11543]))
def test_structured_json(doc: object, path: LwM2MPath, cf: int) -> None:
    decode_bounded(codec_for(cf), path, json.dumps(doc).encode())


cbor_keys = st.sampled_from([-7, -6, -5, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 8, 9, "vlo", "x_", "n"])
cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.sampled_from(["/3/0/", "/3/0/0", "0", "9", "6/1", "3:0"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(cbor_keys, children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=cbor_values, path=st.sampled_from(PATHS), cf=st.sampled_from([60, 112]))
def test_structured_cbor(doc: object, path: LwM2MPath, cf: int) -> None:
    decode_bounded(codec_for(cf), path, cbor2.dumps(doc))


# ---- size limits and pathological shapes -------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_oversized_payload_rejected_before_parsing(codec: Codec) -> None:
    with no_collector():
        start = time.thread_time()
        with pytest.raises(CodecError, match="limit"):
            codec.decode(LwM2MPath.parse("/3/0/0"), b"0" * (MAX_PAYLOAD_BYTES + 1), MODEL)
        elapsed = time.thread_time() - start
    assert elapsed < CALL_BUDGET_S


@pytest.mark.parametrize(
    ("cf", "payload"),
    [
        (11542, bytes.fromhex("c1 00 61".replace(" ", "")) * (MAX_RECORDS + 1)),
        (
            112,
            b"\x9a"
            + (MAX_RECORDS + 1).to_bytes(4, "big")
            + bytes.fromhex("a1 02 01".replace(" ", "")) * (MAX_RECORDS + 1),
        ),
        (110, b"[" + b",".join([b'{"n":"9","v":1}'] * (MAX_RECORDS + 1)) + b"]"),
        (11543, b'{"e":[' + b",".join([b'{"n":"9","v":1}'] * (MAX_RECORDS + 1)) + b"]}"),
    ],
    ids=["tlv", "senml-cbor", "senml-json", "lwm2m-json"],
)
def test_too_many_records(cf: int, payload: bytes) -> None:
    with pytest.raises(CodecError, match="more than"):
        codec_for(cf).decode(LwM2MPath.parse("/3/0"), payload, MODEL)


@pytest.mark.parametrize(
    ("cf", "payload"),
    [
        (110, b"[" * 200_000 + b"]" * 200_000),
        (11543, b'{"e":' * 100_000),
        (112, b"\x81" * 500_000),
        (60, b"\x9f" * 500_000),
        (112, b"\xc6" * 500_000),  # nested tags
        (11542, b"\x08\x00\xff" * 300_000),  # object instances claiming more than is left
        (11542, b"\x88\x00\x03\x41\x00\x01" * 100_000),  # multiple resources at instance level: fine, bounded
    ],
    ids=["json-arrays", "lwm2m-json-objects", "cbor-arrays", "cbor-indefinite", "cbor-tags", "tlv-lengths", "tlv-many"],
)
def test_deep_or_huge_is_a_codec_error_and_fast(cf: int, payload: bytes) -> None:
    assert len(payload) <= MAX_PAYLOAD_BYTES
    start = time.thread_time()
    with pytest.raises(CodecError):
        codec_for(cf).decode(LwM2MPath.parse("/3/0"), payload, MODEL)
    assert time.thread_time() - start < 1.0


def test_bad_argument_types_are_codec_errors() -> None:
    codec = codec_for(11542)
    with pytest.raises(CodecError):
        codec.decode(LwM2MPath.parse("/3/0"), "c10064", MODEL)  # type: ignore[arg-type]
    with pytest.raises(CodecError):
        codec.decode("/3/0", b"", MODEL)  # type: ignore[arg-type]
    with pytest.raises(CodecError):
        codec.encode(LwM2MPath.parse("/3/0"), {"/3/0/9": 1}, MODEL)  # type: ignore[dict-item]
    with pytest.raises(CodecError):
        codec.encode(LwM2MPath.parse("/3/0"), [(LwM2MPath.parse("/3/0/9"), 1)], MODEL)  # type: ignore[arg-type]


@pytest.mark.parametrize("cf", [11542, 112, 110, 11543], ids=str)
def test_largest_accepted_payload_decodes_in_bounded_time(cf: int) -> None:
    path = LwM2MPath.parse("/40000")
    content: Content = {LwM2MPath(40000, i, 0): "x" * 70 for i in range(MAX_RECORDS - 1)}
    payload = codec_for(cf).encode(path, content, MODEL)
    assert 700_000 < len(payload) <= MAX_PAYLOAD_BYTES
    start = time.thread_time()
    assert codec_for(cf).decode(path, payload, MODEL) == content
    assert time.thread_time() - start < 2.0


def test_tlv_empty_containers_count_against_the_limit() -> None:
    with pytest.raises(CodecError, match="more than"):
        codec_for(11542).decode(LwM2MPath.parse("/40000"), b"\x00\x00" * 500_000, MODEL)


any_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=5), st.binary(max_size=5),
    st.lists(st.integers(), max_size=2), st.builds(ObjectLink, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
)  # fmt: skip
any_paths = st.sampled_from(
    [LwM2MPath.parse(p) for p in ("/3/0/0", "/3/0/9", "/3/0/6", "/3/0/6/0", "/3/0", "/3", "/4/0/0", "/40000/0/3")]
)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=any_paths, content=st.dictionaries(any_paths, any_values, max_size=4))
def test_encode_random_content_raises_only_codec_error(
    codec: Codec, request: LwM2MPath, content: dict[LwM2MPath, object]
) -> None:
    try:
        payload = codec.encode(request, content, MODEL)  # type: ignore[arg-type]
    except CodecError as exc:
        assert str(exc)
        return
    assert isinstance(payload, bytes)
