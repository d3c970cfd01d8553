"""Bootstrap sequence bytes, derived by hand from the TLV type-byte rules (DESIGN §4) and the OMA ids of
objects 0 and 1, never from the encoder; plus the state machine and the config/request parsers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.protocol.bootstrap import (
    BootstrapError,
    BootstrapSequence,
    PskMaterial,
    State,
    parse_bootstrap_request,
    parse_config,
    plan,
)
from lwm2m_server.protocol.codecs.tlv import TlvCodec
from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath

MODEL = ObjectRegistry.default()
KEY = bytes(range(16))


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_psk_plan_bytes() -> None:
    config = parse_config({"endpoint": "d1", "server_uri": "coaps://127.0.0.1:5684", "lifetime": 60})
    steps = plan(config, PskMaterial("id1", KEY), MODEL)
    assert [(s.method, s.uri_path) for s in steps] == [
        ("DELETE", ("0",)), ("DELETE", ("1",)), ("PUT", ("0", "1")), ("PUT", ("1", "0")), ("POST", ("bs",))]
    uri = b"coaps://127.0.0.1:5684".hex()
    assert steps[2].payload == h(
        "c8 00 16" + uri  # res 0 Server URI, 8-bit length 22
        + "c1 01 00"  # res 1 Bootstrap-Server false
        + "c1 02 00"  # res 2 Security Mode 0 (PSK)
        + "c3 03 696431"  # res 3 identity "id1" (opaque)
        + "c0 04"  # res 4 server public key, empty
        + "c8 05 10" + KEY.hex()  # res 5 secret key, 16 bytes
        + "c1 0a 01"  # res 10 Short Server ID 1
    )
    assert steps[2].content_format == 11542
    # res 0 SSID 1, res 1 lifetime 60 (0x3c), res 7 binding "U"
    assert steps[3].payload == h("c1 00 01 c1 01 3c c1 07 55")
    assert steps[4].payload == b"" and steps[0].payload == b""


def test_nosec_plan_without_delete() -> None:
    config = parse_config({"endpoint": "d", "server_uri": "coap://h:5683", "security_mode": "nosec",
                           "delete_first": False, "ssid": 300, "lifetime": 86400, "binding": "UQ"})
    steps = plan(config, None, MODEL)
    assert [s.method for s in steps] == ["PUT", "PUT", "POST"]
    sec = TlvCodec().decode(LwM2MPath.parse("/0/1"), steps[0].payload, MODEL)
    assert sec[LwM2MPath.parse("/0/1/2")] == 3
    assert sec[LwM2MPath.parse("/0/1/3")] == b"" and sec[LwM2MPath.parse("/0/1/5")] == b""
    # SSID 300 = 0x012c (2 bytes), lifetime 86400 = 0x00015180 (4 bytes), binding "UQ"
    assert steps[1].payload == h("c2 00 012c c4 01 00015180 c2 07 5551")


def test_psk_material_must_match_mode() -> None:
    psk = parse_config({"endpoint": "d", "server_uri": "coaps://h"})
    nosec = parse_config({"endpoint": "d", "server_uri": "coap://h", "security_mode": "nosec"})
    with pytest.raises(BootstrapError):
        plan(psk, None, MODEL)
    with pytest.raises(BootstrapError):
        plan(nosec, PskMaterial("i", KEY), MODEL)


def test_model_mismatch_is_refused() -> None:
    # an object model without object 0 cannot be bootstrapped against
    empty = ObjectRegistry([d for d in MODEL if d.id != 0])
    with pytest.raises(BootstrapError, match="object model"):
        plan(parse_config({"endpoint": "d", "server_uri": "coaps://h"}), PskMaterial("i", KEY), empty)


def test_sequence_walks_and_fails() -> None:
    steps = plan(parse_config({"endpoint": "d", "server_uri": "coaps://h"}), PskMaterial("i", KEY), MODEL)
    seq = BootstrapSequence(steps)
    for code in ("2.02", "2.02", "2.04", "2.04"):
        assert seq.answer(code) is State.RUNNING
    assert seq.current is not None and seq.current.name == "finish"
    assert seq.answer("2.04") is State.DONE and seq.current is None
    with pytest.raises(RuntimeError):
        seq.answer("2.04")
    bad = BootstrapSequence(steps)
    bad.answer("2.02")
    assert bad.answer("4.05") is State.FAILED
    assert bad.error == "DELETE /1 answered 4.05"


def test_bootstrap_request_query() -> None:
    assert parse_bootstrap_request(["ep=dev-1", "pct=11542"]) == "dev-1"
    for query in ([], ["ep="], ["ep"], ["ep=a", "ep=b"], ["pct=60"]):
        with pytest.raises(BootstrapError) as info:
            parse_bootstrap_request(query)
        assert info.value.coap_code == "4.00"


@pytest.mark.parametrize("bad", [
    {"endpoint": "d", "server_uri": "coap://h"},  # psk needs coaps
    {"endpoint": "d", "server_uri": "coaps://h", "security_mode": "nosec"},
    {"endpoint": "d", "server_uri": "http://h"},
    {"endpoint": "", "server_uri": "coaps://h"},
    {"endpoint": "d", "server_uri": "coaps://h", "lifetime": 0},
    {"endpoint": "d", "server_uri": "coaps://h", "lifetime": True},
    {"endpoint": "d", "server_uri": "coaps://h", "ssid": 65535},
    {"endpoint": "d", "server_uri": "coaps://h", "binding": "X"},
    {"endpoint": "d", "server_uri": "coaps://h", "delete_first": "yes"},
    {"endpoint": "d", "server_uri": "coaps://h", "colour": "red"},
])
def test_bad_configs(bad: dict[str, object]) -> None:
    with pytest.raises(BootstrapError):
        parse_config(bad)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                     max_leaves=8)
_FIELDS = st.sampled_from(["endpoint", "server_uri", "security_mode", "lifetime", "binding", "ssid",
                           "delete_first", "other"])


@given(st.dictionaries(_FIELDS, _JSON, max_size=8))
def test_config_parser_never_crashes(data: dict[str, object]) -> None:
    try:
        config = parse_config(data)
    except BootstrapError:
        return
    # what parses plans without error and round-trips
    assert parse_config(config.as_dict()) == config
    psk = PskMaterial("i", KEY) if config.security_mode == "psk" else None
    assert plan(config, psk, MODEL)[-1].method == "POST"


@given(st.text(min_size=1, max_size=40).filter(lambda s: s.isprintable()),
       st.integers(1, 0x7FFFFFFF), st.integers(1, 65534), st.sampled_from(["U", "UQ"]))
def test_valid_configs_parse(endpoint: str, lifetime: int, ssid: int, binding: str) -> None:
    config = parse_config({"endpoint": endpoint, "server_uri": "coaps://[::1]:5684", "lifetime": lifetime,
                           "ssid": ssid, "binding": binding})
    server = TlvCodec().decode(LwM2MPath.parse("/1/0"), plan(config, PskMaterial("i", KEY), MODEL)[3].payload, MODEL)
    assert server == {LwM2MPath.parse("/1/0/0"): ssid, LwM2MPath.parse("/1/0/1"): lifetime,
                      LwM2MPath.parse("/1/0/7"): binding}


@given(st.lists(st.text(max_size=30), max_size=6))
def test_bootstrap_request_parser_never_crashes(query: list[str]) -> None:
    try:
        endpoint = parse_bootstrap_request(query)
    except BootstrapError as exc:
        assert exc.coap_code == "4.00"
        return
    assert f"ep={endpoint}" in query
