"""The one size parser: every size flag, API field, filter literal and config value goes through :func:`parse_size`.

``64KiB`` / ``1MiB`` / ``1GiB`` are binary (IEC) and unambiguous. ``64KB``, ``64kB``, ``64K`` and ``64k`` are read
the way microcontroller datasheets use them (JEDEC): K = 1024, M = 1024², G = 1024³. Every size in this product
is a device's RAM or flash, and an operator copying "256 KB SRAM" from a datasheet means 262,144 bytes; reading it
as 256,000 would silently plan for 6 KiB less than the part has. Because the decimal reading exists too, any size
written with such a unit is echoed back as a byte count (:func:`size_note`), so nobody is surprised either way.
A plain number is bytes; ``_`` and ``,`` group digits (``49_152``, ``49,152``).
"""

from __future__ import annotations

import re

BINARY_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
"""Units whose meaning nobody can mistake (``b`` = bytes)."""
JEDEC_UNITS = {"k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
"""Datasheet units: read as powers of 1024 and echoed back."""
UNITS = {**BINARY_UNITS, **JEDEC_UNITS}
EXAMPLES = "e.g. 65536, 64KiB, 1MiB (64KB and 64k also mean 65,536)"

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
SIZE_LITERAL = re.compile(r"(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB|KB|kB|MB|GB|B|[kKMG])(?![A-Za-z0-9_])")
"""A number with a unit inside a larger text (the filter language); plain numbers are left to the caller."""


class SizeError(ValueError):
    """A size that cannot be read; the message says why in words and gives examples."""


def _split(text: str) -> tuple[str, str]:
    match = _SIZE_RE.match(text.replace(",", "").replace("_", ""))
    if not match:
        raise SizeError(f"{text!r} is not a size: expected a whole number of bytes with an optional unit, {EXAMPLES}")
    return match.group(1), match.group(2)


def parse_size(text: str | int, what: str = "size") -> int:
    """Bytes from ``"256KiB"``, ``"1MiB"``, ``"64KB"`` (= 65,536), ``"49152"`` or an int >= 0."""
    if isinstance(text, bool):
        raise SizeError(f"{what}: expected a size, got a boolean")
    if isinstance(text, int):
        if text < 0:
            raise SizeError(f"{what} must be 0 or more bytes, got {text}")
        return text
    if not isinstance(text, str):
        raise SizeError(f"{what}: expected a size such as 64KiB, got {type(text).__name__}")
    try:
        number, unit = _split(text)
    except SizeError as exc:
        raise SizeError(f"{what}: {exc}") from None
    factor = UNITS.get(unit.lower())
    if factor is None:
        raise SizeError(f"{what}: unknown unit {unit!r} in {text!r}; use B, KiB, MiB or GiB (KB/K, MB/M, GB/G are "
                        f"read as KiB, MiB, GiB)")  # fmt: skip
    value = float(number) * factor if "." in number else int(number) * factor
    if value != int(value):
        raise SizeError(f"{what}: {text!r} is not a whole number of bytes ({value:,.2f} B)")
    return int(value)


def is_explicit(text: str | int) -> bool:
    """True when nobody can read ``text`` two ways: a plain byte count or a KiB/MiB/GiB/B unit."""
    if isinstance(text, int):
        return True
    try:
        _, unit = _split(text)
    except SizeError:
        return True
    return unit == "" or unit.lower() in BINARY_UNITS


def size_note(text: str | int, what: str = "size") -> str | None:
    """``"--ram 64KB = 65,536 B (KB read as KiB; write 64000 for decimal)"`` when the unit was not binary-explicit."""
    if is_explicit(text):
        return None
    value = parse_size(text, what)
    _, unit = _split(str(text))
    binary = {"k": "KiB", "m": "MiB", "g": "GiB"}[unit.lower()[0]]
    decimal = int(float(_split(str(text))[0]) * 1000 ** ("kmg".index(unit.lower()[0]) + 1))
    return f"{what} {str(text).strip()} = {value:,} B ({unit} read as {binary}; write {decimal} for {decimal:,} B)"


def format_bytes(n: int) -> str:
    """``61440`` -> ``"61,440 B"`` (the fit report quotes exact bytes)."""
    return f"{n:,} B"


def short_size(n: int) -> str:
    """A compact binary size for names: ``262144`` -> ``256k``, ``1048576`` -> ``1m``, ``1000`` -> ``1000``."""
    for factor, suffix in ((1024**3, "g"), (1024**2, "m"), (1024, "k")):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{suffix}"
    return str(n)
