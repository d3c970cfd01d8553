"""CoRE Link Format (RFC 6690): ``</3/0>;ver=1.1,</>;rt="oma.lwm2m";ct=110``.

The parser is a single left-to-right scan (linear in the input), with caps on the input size and on the
number of links and parameters, because it runs on payloads from untrusted devices.
Tolerated beyond the RFC: whitespace around separators, a trailing comma, and unquoted values that hold
characters a strict ``ptoken`` would not. Parameter names are case-insensitive and stored lowercased;
when a parameter repeats on one link, the first occurrence wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

MAX_TEXT = 64 * 1024
MAX_LINKS = 4096
MAX_PARAMS = 64

_WS = " \t\r\n"
_NAME = re.compile(r"[A-Za-z0-9!#$&+\-.^_`|~*]+")
_NUMERIC_VALUE = re.compile(r"[0-9]+(\.[0-9]+)*")


class LinkFormatError(ValueError):
    """The text is not CoRE link format."""


@dataclass(frozen=True)
class Link:
    """One link: the target between ``<`` and ``>`` and its parameters (valueless ones map to None)."""

    target: str
    params: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __hash__(self) -> int:
        return hash((self.target, tuple(self.params.items())))

    def get(self, name: str) -> str | None:
        """The value of ``name`` (None when absent or valueless)."""
        return self.params.get(name.lower())

    def has(self, name: str) -> bool:
        return name.lower() in self.params

    def values(self, name: str) -> tuple[str, ...]:
        """A space-separated parameter (``rt``, ``ct``, ``if``) split into its values."""
        raw = self.get(name)
        return tuple(raw.split()) if raw else ()


class _Scanner:
    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> LinkFormatError:
        return LinkFormatError(f"{message} at offset {self.pos}")

    def skip_ws(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        self.pos = pos

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def target(self) -> str:
        if self.peek() != "<":
            raise self.fail("expected '<'")
        end = self.text.find(">", self.pos + 1)
        if end < 0:
            raise self.fail("unterminated '<'")
        value = self.text[self.pos + 1 : end]
        if not value:
            raise self.fail("empty link target")
        if any(c in value for c in '<" \t\r\n') or not value.isprintable():
            raise self.fail(f"invalid character in link target {value[:40]!r}")
        self.pos = end + 1
        return value

    def name(self) -> str:
        m = _NAME.match(self.text, self.pos)
        if not m:
            raise self.fail("expected a parameter name")
        self.pos = m.end()
        return m.group().lower()

    def value(self) -> str:
        if self.peek() == '"':
            return self.quoted()
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] not in ",;" + _WS:
            c = text[self.pos]
            if c in '"<>\\' or not c.isprintable():
                raise self.fail(f"invalid character {c!r} in unquoted value")
            self.pos += 1
        if self.pos == start:
            raise self.fail("empty value after '='")
        return text[start : self.pos]

    def quoted(self) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.fail("unterminated quoted string")
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == "\\":
                if self.pos + 1 >= len(text):
                    raise self.fail("unterminated escape")
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            if not c.isprintable() and c not in "\t":
                raise self.fail("control character in quoted string")
            out.append(c)
            self.pos += 1


def parse_link_format(text: str) -> list[Link]:
    """Parse a link-format document; ``""`` (or only whitespace) is an empty list."""
    if not isinstance(text, str):
        raise LinkFormatError(f"expected str, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise LinkFormatError(f"link format larger than {MAX_TEXT} characters")
    sc = _Scanner(text)
    links: list[Link] = []
    sc.skip_ws()
    while not sc.at_end():
        if len(links) >= MAX_LINKS:
            raise sc.fail(f"more than {MAX_LINKS} links")
        target = sc.target()
        params: dict[str, str | None] = {}
        count = 0
        sc.skip_ws()
        while sc.peek() == ";":
            sc.pos += 1
            sc.skip_ws()
            count += 1
            if count > MAX_PARAMS:
                raise sc.fail(f"more than {MAX_PARAMS} parameters on one link")
            name = sc.name()
            sc.skip_ws()
            value: str | None = None
            if sc.peek() == "=":
                sc.pos += 1
                sc.skip_ws()
                value = sc.value()
                sc.skip_ws()
            params.setdefault(name, value)
        links.append(Link(target, params))
        if sc.at_end():
            break
        if sc.peek() != ",":
            raise sc.fail(f"expected ',' or ';', got {sc.peek()!r}")
        sc.pos += 1
        sc.skip_ws()
    return links


def _format_value(value: str) -> str:
    if not value.replace("\t", " ").isprintable():
        raise LinkFormatError(f"cannot format control characters in value {value[:40]!r}")
    if _NUMERIC_VALUE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def format_link_format(links: Iterable[Link]) -> str:
    """Serialise links: numeric values unquoted (``ct=110``, ``ver=1.1``), everything else quoted."""
    parts: list[str] = []
    for link in links:
        if not link.target or any(c in link.target for c in '<>" \t\r\n'):
            raise LinkFormatError(f"cannot format link target {link.target!r}")
        chunk = [f"<{link.target}>"]
        for name, value in link.params.items():
            if not _NAME.fullmatch(name):
                raise LinkFormatError(f"invalid parameter name {name!r}")
            chunk.append(name if value is None else f"{name}={_format_value(value)}")
        parts.append(";".join(chunk))
    return ",".join(parts)
