"""RFC 6690 link-format parsing and formatting."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.protocol.linkformat import (
    MAX_LINKS,
    MAX_PARAMS,
    MAX_TEXT,
    Link,
    LinkFormatError,
    format_link_format,
    parse_link_format,
)


def test_lwm2m_registration_payload() -> None:
    links = parse_link_format('</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>')
    assert [lk.target for lk in links] == ["/", "/1", "/1/0", "/3/0"]
    assert dict(links[0].params) == {"rt": "oma.lwm2m", "ct": "110"}
    assert links[1].get("ver") == "1.1"
    assert dict(links[2].params) == {}


def test_quoted_and_unquoted_values_are_equal() -> None:
    a, b = parse_link_format('</3>;ver="1.1",</3>;ver=1.1')
    assert a == b


def test_valueless_params() -> None:
    (link,) = parse_link_format("</3/0>;obs;Q")
    assert dict(link.params) == {"obs": None, "q": None}
    assert link.has("obs") and link.get("obs") is None
    assert not link.has("ver")


def test_commas_and_semicolons_inside_quotes() -> None:
    links = parse_link_format('</a>;title="x, y; z",</b>')
    assert links[0].get("title") == "x, y; z"
    assert links[1].target == "/b"


def test_escaped_quote_in_quoted_string() -> None:
    (link,) = parse_link_format(r'</a>;title="say \"hi\" \\ ok"')
    assert link.get("title") == 'say "hi" \\ ok'


def test_unknown_attributes_kept() -> None:
    (link,) = parse_link_format('</3/0>;foo=bar;x-vendor="1";dim=3')
    assert dict(link.params) == {"foo": "bar", "x-vendor": "1", "dim": "3"}


def test_whitespace_around_separators_and_trailing_comma() -> None:
    links = parse_link_format(" </1/0> ; ver = 1.1 ,\n\t</3/0>\r\n,")
    assert [lk.target for lk in links] == ["/1/0", "/3/0"]
    assert links[0].get("ver") == "1.1"


def test_ct_list_value() -> None:
    (link,) = parse_link_format('</>;ct="60 110  11543"')
    assert link.values("ct") == ("60", "110", "11543")
    assert link.values("rt") == ()


def test_param_names_case_insensitive_first_wins() -> None:
    (link,) = parse_link_format("</a>;CT=1;ct=2")
    assert link.get("ct") == "1" and link.get("CT") == "1"


def test_empty_input() -> None:
    assert parse_link_format("") == []
    assert parse_link_format("  \n") == []


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "</3/0",
        "<>",
        "</3/0>;",
        "</3/0>;=1",
        "</3/0>;ver=",
        '</3/0>;ver="1.1',
        '</3/0>;ver="1.1\\',
        "</3/0> </1/0>",
        "</3/0>,,</1/0>",
        "</3 0>",
        '</3/0>;x="a"b',
        '</3/0>;x=a"b',
        "</3/0>;x=\x01",
        "</3/\x00>",
        ",</3/0>",
        "</3/0>x",
    ],
)
def test_garbage_rejected(text: str) -> None:
    with pytest.raises(LinkFormatError):
        parse_link_format(text)


def test_non_str_rejected() -> None:
    with pytest.raises(LinkFormatError):
        parse_link_format(b"</3/0>")  # type: ignore[arg-type]


def test_limits() -> None:
    with pytest.raises(LinkFormatError, match="larger than"):
        parse_link_format("<" + "a" * MAX_TEXT + ">")
    with pytest.raises(LinkFormatError, match="links"):
        parse_link_format(",".join(["<a>"] * (MAX_LINKS + 1)))
    with pytest.raises(LinkFormatError, match="parameters"):
        parse_link_format("<a>" + ";x" * (MAX_PARAMS + 1))


def test_bounded_cost_on_large_input() -> None:
    text = ",".join(f"</{i}/0>;ver=1.1" for i in range(MAX_LINKS))[:MAX_TEXT]
    text = text[: text.rfind(",")]
    started = time.perf_counter()
    links = parse_link_format(text)
    assert len(links) > 2000
    assert time.perf_counter() - started < 2.0
    started = time.perf_counter()
    with pytest.raises(LinkFormatError):
        parse_link_format('</a>;x="' + "y" * (MAX_TEXT - 20))
    assert time.perf_counter() - started < 2.0


def test_format() -> None:
    links = [
        Link("/", {"rt": "oma.lwm2m", "ct": "110"}),
        Link("/3", {"ver": "1.1"}),
        Link("/3/0"),
        Link("/a", {"obs": None, "title": 'x "y"', "ct": "60 110"}),
    ]
    text = format_link_format(links)
    assert text == '</>;rt="oma.lwm2m";ct=110,</3>;ver=1.1,</3/0>,</a>;obs;title="x \\"y\\"";ct="60 110"'
    assert parse_link_format(text) == links


def test_format_rejects_bad_links() -> None:
    with pytest.raises(LinkFormatError):
        format_link_format([Link("/a b")])
    with pytest.raises(LinkFormatError):
        format_link_format([Link("/a", {"bad name": "1"})])
    with pytest.raises(LinkFormatError):
        format_link_format([Link("/a", {"x": "line\nbreak"})])


def test_link_is_immutable_and_hashable() -> None:
    link = Link("/3", {"ver": "1.1"})
    with pytest.raises(TypeError):
        link.params["ver"] = "2"  # type: ignore[index]
    assert {link, Link("/3", {"ver": "1.1"})} == {link}


targets = st.text(alphabet="abc/0123456789-._", min_size=1, max_size=12)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=6)
chars = st.characters(codec="utf-8", categories=["L", "N", "P"], include_characters=" ")
values = st.none() | st.text(alphabet=chars, max_size=12)


@given(st.lists(st.builds(Link, targets, st.dictionaries(names, values, max_size=4)), max_size=8))
def test_round_trip(links: list[Link]) -> None:
    assert parse_link_format(format_link_format(links)) == links


@given(st.text(max_size=200))
def test_fuzz_only_link_format_error(text: str) -> None:
    try:
        links = parse_link_format(text)
    except LinkFormatError:
        return
    assert all(link.target for link in links)
