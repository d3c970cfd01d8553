"""The one size parser: the table of what each spelling means, the echo for datasheet units, errors in words."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compilers.sizes import SizeError, is_explicit, parse_size, short_size, size_note

TABLE = [
    ("65536", 65_536, True),
    ("65,536", 65_536, True),
    ("65_536", 65_536, True),
    ("64KiB", 65_536, True),
    ("64 KiB", 65_536, True),
    ("64kib", 65_536, True),
    ("1MiB", 1_048_576, True),
    ("1.5MiB", 1_572_864, True),
    ("1GiB", 1_073_741_824, True),
    ("10B", 10, True),
    # datasheet (JEDEC) units: binary, but echoed back because a decimal reading exists
    ("64KB", 65_536, False),
    ("64kB", 65_536, False),
    ("64k", 65_536, False),
    ("64K", 65_536, False),
    ("2MB", 2_097_152, False),
    ("2M", 2_097_152, False),
    ("1GB", 1_073_741_824, False),
]


@pytest.mark.parametrize(("text", "expected", "explicit"), TABLE)
def test_size_table(text: str, expected: int, explicit: bool) -> None:
    assert parse_size(text) == expected
    assert is_explicit(text) is explicit
    note = size_note(text, "--ram")
    if explicit:
        assert note is None
    else:
        assert note is not None and f"{expected:,} B" in note and note.startswith(f"--ram {text}")


def test_note_offers_the_decimal_spelling() -> None:
    assert size_note("64KB", "--ram") == "--ram 64KB = 65,536 B (KB read as KiB; write 64000 for 64,000 B)"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not a size"),
        ("KiB", "not a size"),
        ("ten", "not a size"),
        ("-5", "not a size"),
        ("12 parsecs", "unknown unit 'parsecs'"),
        ("1.3B", "not a whole number of bytes"),
        ("1..2MiB", "not a size"),
    ],
)
def test_errors_speak_in_words(text: str, words: str) -> None:
    with pytest.raises(SizeError, match=words) as info:
        parse_size(text, "--min-ram")
    assert str(info.value).startswith("--min-ram")
    assert "^" not in str(info.value) and "\\d" not in str(info.value)  # no regex in the message


def test_ints_and_bools() -> None:
    assert parse_size(4096) == 4096
    with pytest.raises(SizeError):
        parse_size(-1)
    with pytest.raises(SizeError):
        parse_size(True)


@given(st.integers(min_value=0, max_value=2**40), st.sampled_from(["", "B", "KiB", "MiB", "KB", "k", "M"]))
def test_every_written_size_round_trips(n: int, unit: str) -> None:
    factor = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "KB": 1024, "k": 1024, "M": 1024**2}[unit]
    assert parse_size(f"{n}{unit}") == n * factor


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_size_error(text: str) -> None:
    with contextlib.suppress(SizeError):
        assert parse_size(text) >= 0


def test_short_size() -> None:
    assert [short_size(n) for n in (262_144, 1_048_576, 163_840, 1000)] == ["256k", "1m", "160k", "1000"]
