"""Round-trip properties: decode(encode(content)) == content, same Python types, for every codec."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m_server.protocol.codecs import CONTENT_FORMATS, ContentFormat, codec_for
from lwm2m_server.protocol.codecs.link import LinkCodec, decode_links, encode_links
from lwm2m_server.protocol.linkformat import Link
from lwm2m_server.protocol.model import Content, ResourceType
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.strategies import path_and_content, single_value
from tests.unit.codecs.synthetic import MODEL

MULTI = [ContentFormat.TLV, ContentFormat.OLD_TLV, ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR,
         ContentFormat.LWM2M_JSON, ContentFormat.OLD_LWM2M_JSON]  # fmt: skip


def assert_same(decoded: Content, content: Content) -> None:
    assert decoded == content
    for key, value in content.items():
        assert type(decoded[key]) is type(value), key


def roundtrip(cf: int, path: LwM2MPath, content: Content) -> None:
    codec = codec_for(cf)
    payload = codec.encode(path, content, MODEL)
    assert_same(codec.decode(path, payload, MODEL), content)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=path_and_content())
def test_tlv_roundtrip(case: tuple[LwM2MPath, Content]) -> None:
    roundtrip(ContentFormat.TLV, *case)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=path_and_content())
def test_senml_cbor_roundtrip(case: tuple[LwM2MPath, Content]) -> None:
    roundtrip(ContentFormat.SENML_CBOR, *case)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=path_and_content())
def test_senml_json_roundtrip(case: tuple[LwM2MPath, Content]) -> None:
    roundtrip(ContentFormat.SENML_JSON, *case)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=path_and_content())
def test_lwm2m_json_roundtrip(case: tuple[LwM2MPath, Content]) -> None:
    roundtrip(ContentFormat.LWM2M_JSON, *case)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=path_and_content(), cf=st.sampled_from([ContentFormat.OLD_TLV, ContentFormat.OLD_LWM2M_JSON]))
def test_old_numbers_roundtrip(case: tuple[LwM2MPath, Content], cf: int) -> None:
    roundtrip(cf, *case)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=single_value())
def test_text_roundtrip(case: tuple[LwM2MPath, Content]) -> None:
    roundtrip(ContentFormat.TEXT, *case)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=single_value())
def test_cbor_roundtrip(case: tuple[LwM2MPath, Content]) -> None:
    roundtrip(ContentFormat.CBOR, *case)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=single_value(frozenset({ResourceType.OPAQUE})))
def test_opaque_roundtrip(case: tuple[LwM2MPath, Content]) -> None:
    roundtrip(ContentFormat.OPAQUE, *case)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=single_value())
def test_single_values_agree_across_all_value_formats(case: tuple[LwM2MPath, Content]) -> None:
    for cf in (*MULTI, ContentFormat.TEXT, ContentFormat.CBOR):
        roundtrip(cf, *case)


_param = st.from_regex(r"[a-z]{1,6}", fullmatch=True)
_pvalue = st.one_of(st.none(), st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,2})?", fullmatch=True),
                    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10))  # fmt: skip
links = st.lists(
    st.builds(
        Link,
        st.from_regex(r"/[0-9]{1,5}(/[0-9]{1,5}){0,3}", fullmatch=True),
        st.dictionaries(_param, _pvalue, max_size=4),
    ),
    max_size=6,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(links=links)
def test_link_roundtrip(links: list[Link]) -> None:
    payload = encode_links(links)
    assert decode_links(payload) == links
    path = LwM2MPath.parse("/3/0")
    text = payload.decode()
    codec = LinkCodec()
    assert codec.decode(path, codec.encode(path, {path: text}, MODEL), MODEL) == {path: text}


def test_every_registered_codec_is_covered() -> None:
    assert set(CONTENT_FORMATS) == {int(cf) for cf in ContentFormat}
