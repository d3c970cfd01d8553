"""Register/Update parsing: one test per DESIGN §4 rule, with payloads as real clients send them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.protocol.registration import (
    DEFAULT_LIFETIME,
    MAX_PAYLOAD_BYTES,
    SUPPORTED_VERSIONS,
    RegistrationError,
    parse_register,
    parse_update,
)

P = LwM2MPath.parse

# Byte-level payloads in the shape real clients send.
ZEPHYR = b"</>;ct=11543,</1/0>,</3/0>,</5/0>"
ANJAY_11 = b'</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>'
WAKAAMA_10 = b"</1/0>,</3/0>,</5/0>"
LESHAN_CLIENT = b'</>;rt="oma.lwm2m";ct="60 110 112 11542 11543",</0/0>,</1>;ver=1.1,</1/0>,</3/0>,</6/0>'


def reject(query: list[str], payload: bytes = WAKAAMA_10, code: str = "4.00") -> RegistrationError:
    with pytest.raises(RegistrationError) as info:
        parse_register(query, payload)
    assert info.value.coap_code == code
    return info.value


# ---- real clients ----------------------------------------------------------------------------------
def test_zephyr_register() -> None:
    req = parse_register(["ep=zephyr-nrf52", "lt=30", "lwm2m=1.0", "b=U"], ZEPHYR)
    assert req.endpoint == "zephyr-nrf52" and req.lifetime == 30 and req.lwm2m_version == "1.0"
    assert req.binding == "U" and not req.queue_mode
    assert req.root_path == "/" and req.content_formats == frozenset({11543})
    assert dict(req.objects) == {1: None, 3: None, 5: None}
    assert req.instances == {P("/1/0"), P("/3/0"), P("/5/0")}


def test_anjay_11_register() -> None:
    req = parse_register(["ep=anjay", "lt=86400", "lwm2m=1.1", "b=U", "Q"], ANJAY_11)
    assert req.lwm2m_version == "1.1" and req.queue_mode and req.binding == "U"
    assert req.content_formats == frozenset({110})
    assert dict(req.objects) == {1: "1.1", 3: "1.1"}
    assert req.instances == {P("/1/0"), P("/3/0")}


def test_wakaama_10_register() -> None:
    req = parse_register(["ep=wakaama", "b=U", "lt=300", "lwm2m=1.0"], WAKAAMA_10)
    assert req.root_path == "/" and req.content_formats == frozenset()
    assert dict(req.objects) == {1: None, 3: None, 5: None}


def test_ct_list() -> None:
    req = parse_register(["ep=x", "lwm2m=1.1"], LESHAN_CLIENT)
    assert req.content_formats == frozenset({60, 110, 112, 11542, 11543})
    assert P("/6/0") in req.instances and req.objects[0] is None and req.objects[1] == "1.1"


# ---- query rules ------------------------------------------------------------------------------------
def test_missing_ep_is_400() -> None:
    assert "ep" in str(reject(["lt=30", "lwm2m=1.1"]))


@pytest.mark.parametrize("ep", ["ep=", "ep"])
def test_empty_or_valueless_ep_is_400(ep: str) -> None:
    reject([ep])


def test_overlong_ep_is_400() -> None:
    reject(["ep=" + "e" * 256])


def test_duplicate_param_is_400() -> None:
    assert "duplicate" in str(reject(["ep=a", "lt=30", "lt=40"]))
    reject(["ep=a", "ep=b"])


@pytest.mark.parametrize(
    "lt", ["lt=abc", "lt=-5", "lt=+5", "lt=0", "lt=1.5", "lt=", "lt", "lt=99999999999", "lt= 30", "lt=4294967296"]
)
def test_bad_lifetime_is_400(lt: str) -> None:
    reject(["ep=a", lt])


def test_lifetime_bounds_accepted() -> None:
    assert parse_register(["ep=a", "lt=1"], b"").lifetime == 1
    assert parse_register(["ep=a", "lt=4294967295"], b"").lifetime == 4294967295


def test_missing_lt_defaults_to_86400() -> None:
    assert parse_register(["ep=a"], WAKAAMA_10).lifetime == DEFAULT_LIFETIME == 86400


def test_missing_b_defaults_to_u() -> None:
    req = parse_register(["ep=a"], WAKAAMA_10)
    assert req.binding == "U" and not req.queue_mode


def test_missing_lwm2m_means_10() -> None:
    assert parse_register(["ep=a"], WAKAAMA_10).lwm2m_version == "1.0"


@pytest.mark.parametrize("version", ["2.0", "0.9", "1.3", "abc", "1.1.0"])
def test_unsupported_version_is_412(version: str) -> None:
    err = reject(["ep=a", f"lwm2m={version}"], code="4.12")
    assert "version" in str(err)


@pytest.mark.parametrize("version", sorted(SUPPORTED_VERSIONS))
def test_supported_versions(version: str) -> None:
    assert parse_register(["ep=a", f"lwm2m={version}"], b"").lwm2m_version == version


@pytest.mark.parametrize("q", ["lwm2m=", "lwm2m"])
def test_empty_version_is_400(q: str) -> None:
    reject(["ep=a", q])


def test_queue_mode_11_valueless_q() -> None:
    req = parse_register(["ep=a", "lwm2m=1.1", "Q"], ANJAY_11)
    assert req.queue_mode and req.binding == "U"


def test_queue_mode_10_binding_uq() -> None:
    req = parse_register(["ep=a", "lwm2m=1.0", "b=UQ"], WAKAAMA_10)
    assert req.queue_mode and req.binding == "U"


def test_q_with_value_is_400() -> None:
    reject(["ep=a", "Q=1"])


@pytest.mark.parametrize("b", ["b=X", "b=", "b", "b=UU", "b=Q", "b=u", "b=UQSTNX"])
def test_bad_binding_is_400(b: str) -> None:
    reject(["ep=a", b])


def test_other_bindings() -> None:
    assert parse_register(["ep=a", "b=UQS"], b"").binding == "US"
    assert parse_register(["ep=a", "lwm2m=1.1", "b=T"], b"").binding == "T"


def test_sms() -> None:
    assert parse_register(["ep=a", "sms=+3581234"], b"").sms == "+3581234"
    assert parse_register(["ep=a"], b"").sms is None
    reject(["ep=a", "sms"])


def test_unknown_params_ignored_any_order() -> None:
    req = parse_register(["Q", "lt=60", "d=domain", "et=sensor", "lwm2m=1.1", "ep=late"], b"")
    assert req.endpoint == "late" and req.lifetime == 60 and req.queue_mode


@pytest.mark.parametrize("query", [["=x", "ep=a"], ["ep=a\x00b"], ["ep=a", "lt=3\n0"]])
def test_malformed_query_items_are_400(query: list[str]) -> None:
    reject(query)


def test_query_must_be_a_sequence_of_str() -> None:
    reject("ep=a")  # type: ignore[arg-type]
    reject([b"ep=a"])  # type: ignore[list-item]
    reject([f"x{i}=1" for i in range(40)] + ["ep=a"])


# ---- payload rules ----------------------------------------------------------------------------------
def test_alternate_root_path() -> None:
    payload = b'</lwm2m>;rt="oma.lwm2m";ct=11542,</lwm2m/1/0>,</lwm2m/3>;ver=1.1,</lwm2m/3/0>,</other/x>'
    req = parse_register(["ep=a", "lwm2m=1.1"], payload)
    assert req.root_path == "/lwm2m"
    assert req.content_formats == frozenset({11542})
    assert req.instances == {P("/1/0"), P("/3/0")}
    assert dict(req.objects) == {1: None, 3: "1.1"}


def test_alternate_root_with_trailing_slash_and_links_outside_root_ignored() -> None:
    req = parse_register(["ep=a"], b'</3/0>,</dev/>;rt="oma.lwm2m",</dev/5/0>')
    assert req.root_path == "/dev"
    assert req.instances == {P("/5/0")}


def test_rt_without_root_target_and_rt_list() -> None:
    req = parse_register(["ep=a"], b'</>;rt="core.rd oma.lwm2m";ct=60,</3/0>')
    assert req.content_formats == frozenset({60}) and req.root_path == "/"


def test_root_link_without_rt() -> None:
    req = parse_register(["ep=a"], b"</3/0>,</>;ct=110")
    assert req.content_formats == frozenset({110})


def test_any_order_quoted_and_unknown_attributes() -> None:
    payload = b'</3/0>;foo=bar,</3>;ver="1.1";x,</5/0>,</>;ct="110";rt="oma.lwm2m";title="root, main"'
    req = parse_register(["ep=a"], payload)
    assert dict(req.objects) == {3: "1.1", 5: None}
    assert req.content_formats == frozenset({110})


def test_version_on_instance_link() -> None:
    req = parse_register(["ep=a"], b"</3/0>;ver=1.1,</3/1>")
    assert req.objects[3] == "1.1"


def test_object_without_instances() -> None:
    req = parse_register(["ep=a"], b"</3/0>,</9>,</32002>;ver=1.0")
    assert req.objects[9] is None and req.objects[32002] == "1.0"
    assert req.instances == {P("/3/0")}


def test_resource_level_links_ignored() -> None:
    req = parse_register(["ep=a"], b"</3/0>,</3/0/1>")
    assert req.instances == {P("/3/0")}


def test_empty_payload_means_no_objects() -> None:
    req = parse_register(["ep=a"], b"")
    assert dict(req.objects) == {} and req.instances == frozenset()


def test_payload_too_large_is_400() -> None:
    big = b",".join(b"</%d/0>" % i for i in range(4000))
    assert len(big) > MAX_PAYLOAD_BYTES
    assert "larger" in str(reject(["ep=a"], big))


def test_non_utf8_is_400() -> None:
    assert "UTF-8" in str(reject(["ep=a"], b'</3/0>;title="\xff\xfe"'))


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        b"</3/0",
        b"</3/65535>",
        b"</65535/0>",
        b"</3/0/1/2/3>",
        b"</>;ct=abc",
        b'</>;ct=""',
        b'</>;ct="110 x"',
        b"</>;ct=70000",
        b"</3>;ver=one",
        b"</3>;ver",
        b'<x>;rt="oma.lwm2m"',
    ],
)
def test_bad_payload_is_400(payload: bytes) -> None:
    reject(["ep=a"], payload)


def test_payload_must_be_bytes() -> None:
    reject(["ep=a"], "</3/0>")  # type: ignore[arg-type]


def test_request_is_immutable() -> None:
    req = parse_register(["ep=a"], ZEPHYR)
    with pytest.raises(TypeError):
        req.objects[9] = None  # type: ignore[index]


# ---- update ----------------------------------------------------------------------------------------
def test_update_empty() -> None:
    upd = parse_update([], b"")
    assert (upd.lifetime, upd.binding, upd.queue_mode, upd.sms, upd.objects, upd.instances) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )
    assert upd.root_path is None and upd.content_formats is None


def test_update_zephyr_only_changed_lt() -> None:
    upd = parse_update(["lt=45"], b"")
    assert upd.lifetime == 45 and upd.binding is None and upd.objects is None


def test_update_binding_and_queue() -> None:
    assert parse_update(["b=UQ"], b"").queue_mode is True
    assert parse_update(["b=U"], b"").queue_mode is False
    assert parse_update(["Q"], b"").queue_mode is True
    assert parse_update(["b=U", "Q"], b"").binding == "U"


def test_update_with_payload() -> None:
    upd = parse_update([], b"</1/0>,</3/0>,</32001/0>")
    assert upd.instances == {P("/1/0"), P("/3/0"), P("/32001/0")}
    assert upd.objects == {1: None, 3: None, 32001: None}
    assert upd.root_path is None and upd.content_formats is None  # no root link: unchanged
    upd = parse_update([], ANJAY_11)
    assert upd.root_path == "/" and upd.content_formats == frozenset({110})


@pytest.mark.parametrize("query", [["lt=x"], ["lt=1", "lt=2"], ["b=Z"], ["Q=yes"], ["sms"], ["lt"]])
def test_update_bad_query_is_400(query: list[str]) -> None:
    with pytest.raises(RegistrationError) as info:
        parse_update(query, b"")
    assert info.value.coap_code == "4.00"


def test_update_bad_payload_is_400() -> None:
    for payload in (b"\xff", b"<", b"x" * (MAX_PAYLOAD_BYTES + 1)):
        with pytest.raises(RegistrationError) as info:
            parse_update([], payload)
        assert info.value.coap_code == "4.00"


# ---- fuzz ------------------------------------------------------------------------------------------
query_items = st.lists(
    st.one_of(
        st.sampled_from(["ep=a", "lt=30", "lwm2m=1.1", "lwm2m=1.0", "b=UQ", "Q", "sms=1", "lt=0", "b=", "ep"]),
        st.text(max_size=20),
    ),
    max_size=8,
)
payloads = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                b"</>",
                b';rt="oma.lwm2m"',
                b";ct=110",
                b",",
                b"</3/0>",
                b"</3>",
                b";ver=1.1",
                b"</lwm2m>",
                b'"',
                b";",
                b"<",
                b">",
                b"</65535/0>",
                b" ",
                b"\xff",
            ]
        ),
        max_size=20,
    ).map(b"".join),
)


@settings(max_examples=300)
@given(query_items, payloads)
def test_fuzz_register_only_registration_error(query: list[str], payload: bytes) -> None:
    try:
        req = parse_register(query, payload)
    except RegistrationError as exc:
        assert exc.coap_code in {"4.00", "4.12"}
        return
    assert req.endpoint and req.lifetime >= 1
    assert all(p.depth == 2 for p in req.instances)


@settings(max_examples=300)
@given(query_items, payloads)
def test_fuzz_update_only_registration_error(query: list[str], payload: bytes) -> None:
    try:
        parse_update(query, payload)
    except RegistrationError as exc:
        assert exc.coap_code == "4.00"
