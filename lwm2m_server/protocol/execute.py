"""Execute arguments (TS Core 1.1, 5.4.5): ``0='abc',1,2='x'``.

Grammar: ``arglist = argument *("," argument)``, ``argument = digit ["=" "'" *CHAR "'"]`` with digit 0-9 and
CHAR printable ASCII except ``"``, ``'`` and ``\\``. Argument numbers may appear at most once.
An argument without a value maps to None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MAX_ARGS_BYTES = 4096

_CHAR = r"[\x20\x21\x23-\x26\x28-\x5b\x5d-\x7e]"
_ARGUMENT = re.compile(rf"([0-9])(?:='({_CHAR}*)')?")
_VALUE = re.compile(rf"{_CHAR}*")

ExecuteArguments = dict[int, str | None]


class ExecuteArgumentError(ValueError):
    """Execute arguments that do not follow the grammar."""


def parse_execute_args(payload: str | bytes) -> ExecuteArguments:
    """Parse an Execute payload; an empty payload means no arguments."""
    if isinstance(payload, bytes | bytearray):
        if len(payload) > MAX_ARGS_BYTES:
            raise ExecuteArgumentError(f"execute arguments longer than {MAX_ARGS_BYTES} bytes")
        try:
            text = bytes(payload).decode("ascii")
        except UnicodeDecodeError:
            raise ExecuteArgumentError("execute arguments must be ASCII") from None
    elif isinstance(payload, str):
        text = payload
    else:
        raise ExecuteArgumentError(f"expected str or bytes, got {type(payload).__name__}")
    if len(text) > MAX_ARGS_BYTES:
        raise ExecuteArgumentError(f"execute arguments longer than {MAX_ARGS_BYTES} characters")
    args: ExecuteArguments = {}
    if text == "":
        return args
    pos = 0
    while True:
        m = _ARGUMENT.match(text, pos)
        if not m:
            raise ExecuteArgumentError(f"invalid execute argument at offset {pos}: {text[pos:pos + 20]!r}")
        number = int(m.group(1))
        if number in args:
            raise ExecuteArgumentError(f"execute argument {number} given twice")
        args[number] = m.group(2)
        pos = m.end()
        if pos == len(text):
            return args
        if text[pos] != ",":
            raise ExecuteArgumentError(f"expected ',' at offset {pos}, got {text[pos]!r}")
        pos += 1


def format_execute_args(args: Mapping[int, str | None] | Iterable[tuple[int, str | None]]) -> str:
    """Inverse of ``parse_execute_args``: ``{0: "abc", 1: None}`` -> ``0='abc',1``."""
    items = list(args.items()) if isinstance(args, Mapping) else list(args)
    seen: set[int] = set()
    parts: list[str] = []
    for number, value in items:
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 9:
            raise ExecuteArgumentError(f"execute argument number must be 0..9, got {number!r}")
        if number in seen:
            raise ExecuteArgumentError(f"execute argument {number} given twice")
        seen.add(number)
        if value is None:
            parts.append(str(number))
            continue
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise ExecuteArgumentError(
                f"execute argument {number} value {value!r} must be printable ASCII without quotes or backslash"
            )
        parts.append(f"{number}='{value}'")
    text = ",".join(parts)
    if len(text) > MAX_ARGS_BYTES:
        raise ExecuteArgumentError(f"execute arguments longer than {MAX_ARGS_BYTES} characters")
    return text
