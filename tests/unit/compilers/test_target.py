from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compilers.target import Target, format_bytes, parse_size, pointer_size_for_cpu


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


@pytest.mark.parametrize(
    ("cpu", "width"),
    [("cortex-m0plus", 4), ("Cortex-M4F", 4), ("cortex-m55", 4), ("rv32imc", 4), ("esp32-s3", 4), ("xtensa-lx7", 4),
     ("x86_64", 8), ("aarch64", 8), ("cortex-a72", 8), ("rv64gc", 8)],
)  # fmt: skip
def test_pointer_size_for_cpu(cpu: str, width: int) -> None:
    assert pointer_size_for_cpu(cpu) == width


def test_pointer_size_rejects_unknown_cpus_and_widths() -> None:
    with pytest.raises(ValueError, match="cannot tell the pointer size of CPU 'z80'"):
        pointer_size_for_cpu("z80")
    with pytest.raises(ValueError, match="pointer size must be 4"):
        Target(1024, 1024, pointer_size=2)


def test_pointer_size_is_part_of_the_compile_class_only_when_not_the_host() -> None:
    host, mcu = Target(1024, 2048), Target(1024, 2048, pointer_size=4)
    assert "pointer_size" not in host.to_dict() and mcu.to_dict()["pointer_size"] == 4
    assert host.key() != mcu.key() and Target.from_dict(mcu.to_dict()) == mcu


@given(st.text(max_size=40))
def test_pointer_size_for_any_cpu_string_is_4_8_or_a_clear_error(cpu: str) -> None:
    try:
        assert pointer_size_for_cpu(cpu) in (4, 8)
    except ValueError as exc:
        assert "cannot tell the pointer size" in str(exc)
