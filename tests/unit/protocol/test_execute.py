"""Execute argument parsing and formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.protocol.execute import (
    MAX_ARGS_BYTES,
    ExecuteArgumentError,
    format_execute_args,
    parse_execute_args,
)


def test_spec_example() -> None:
    assert parse_execute_args("0='abc',1,2='x'") == {0: "abc", 1: None, 2: "x"}
    assert parse_execute_args(b"5='https://example.org/a?b=c'") == {5: "https://example.org/a?b=c"}


def test_empty() -> None:
    assert parse_execute_args(b"") == {}
    assert parse_execute_args("") == {}
    assert format_execute_args({}) == ""


def test_empty_and_space_values() -> None:
    assert parse_execute_args("0='',1=' a b '") == {0: "", 1: " a b "}


def test_order_preserved() -> None:
    assert list(parse_execute_args("3,1,2")) == [3, 1, 2]


@pytest.mark.parametrize(
    "text",
    [
        "a",
        "10",
        "0=abc",
        "0='abc",
        "0='a'b'",
        "0,",
        ",0",
        "0,,1",
        "0='a\"b'",
        "0='a\\\\b'",
        "0 ='a'",
        "0= 'a'",
        "0='a';1",
        "0,0",
        "1='x',1",
        "-1",
        "0='\x01'",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(ExecuteArgumentError):
        parse_execute_args(text)


def test_invalid_bytes_and_types() -> None:
    with pytest.raises(ExecuteArgumentError, match="ASCII"):
        parse_execute_args("0='é'".encode())
    with pytest.raises(ExecuteArgumentError):
        parse_execute_args("0='é'")
    with pytest.raises(ExecuteArgumentError):
        parse_execute_args(b"0," * MAX_ARGS_BYTES)
    with pytest.raises(ExecuteArgumentError):
        parse_execute_args(None)  # type: ignore[arg-type]


def test_format() -> None:
    assert format_execute_args({0: "abc", 1: None, 2: "x"}) == "0='abc',1,2='x'"
    assert format_execute_args([(1, None), (0, "")]) == "1,0=''"


@pytest.mark.parametrize(
    "args",
    [
        {10: None},
        {-1: None},
        {True: None},
        {0: "it's"},
        {0: 'say "x"'},
        {0: "a\\b"},
        {0: "é"},
        {0: 5},
        [(1, None), (1, "x")],
        {0: "x" * MAX_ARGS_BYTES},
    ],
)
def test_format_invalid(args: object) -> None:
    with pytest.raises(ExecuteArgumentError):
        format_execute_args(args)  # type: ignore[arg-type]


printable = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="'\"\\"), max_size=30
)


@given(st.dictionaries(st.integers(0, 9), st.none() | printable))
def test_round_trip(args: dict[int, str | None]) -> None:
    text = format_execute_args(args)
    assert parse_execute_args(text) == args
    assert parse_execute_args(text.encode()) == args


@given(st.binary(max_size=64))
def test_fuzz_only_execute_argument_error(data: bytes) -> None:
    try:
        args = parse_execute_args(data)
    except ExecuteArgumentError:
        return
    assert all(0 <= k <= 9 for k in args)
