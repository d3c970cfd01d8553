from __future__ import annotations

import pytest

from compilers.target import Target, format_bytes, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256KiB", 262_144),
        ("1MiB", 1_048_576),
        ("1.5MiB", 1_572_864),
        ("64 kB", 65_536),
        ("2MB", 2_097_152),
        ("49152", 49_152),
        ("49,152", 49_152),
        ("128kib", 131_072),
        ("10B", 10),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "KiB", "12 parsecs", "-5", "1.3B", "1..2MiB", "ten"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_format_bytes() -> None:
    assert format_bytes(61440) == "61,440 B"


def test_key_is_stable_and_distinguishes_classes() -> None:
    a = Target(262_144, 1 << 20, fpu=True, ops=frozenset({"CONV_2D", "ADD"}))
    b = Target(262_144, 1 << 20, fpu=True, ops=frozenset({"ADD", "CONV_2D"}))
    assert a.key() == b.key()
    assert len({a.key(), Target(262_144, 1 << 20, fpu=False).key(), Target(262_144, 1 << 20).key()}) == 3
    assert Target.from_dict(a.to_dict()) == a


def test_unknown_accelerator_rejected() -> None:
    with pytest.raises(ValueError, match="accelerator"):
        Target(1, 1, accelerator="tpu")
