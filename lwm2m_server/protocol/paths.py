"""LwM2M paths: ``/object[/instance[/resource[/resource-instance]]]``.

Every id is 16-bit and 65535 is reserved (TS Core 7.2.x, "MAX_ID"), so valid ids are 0..65534.
Paths order naturally (a shorter path sorts before its children), which keeps encoded content stable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MAX_ID = 65534
"""Largest usable id; 65535 is reserved by the spec."""

PathLevel = Literal["object", "instance", "resource", "resource_instance"]

_LEVELS: tuple[PathLevel, ...] = ("object", "instance", "resource", "resource_instance")
_SEGMENT = re.compile(r"[0-9]{1,5}")
_PARSED: dict[str, LwM2MPath] = {}  # text -> parsed path (see LwM2MPath.parse)
_PARSED_MAX = 8192
_MAX_TEXT = 64  # "/65534/65534/65534/65534" is 24 chars; anything much longer is garbage
SHAPE = "a path is /object[/instance[/resource[/resource-instance]]], each a number 0-65534, e.g. /3/0/1"


def _check_id(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"{name} {value} out of range 0..{MAX_ID} (65535 is reserved)")


@dataclass(frozen=True, slots=True)
class LwM2MPath:
    """An object, object-instance, resource or resource-instance path."""

    object_id: int
    object_instance: int | None = None
    resource_id: int | None = None
    resource_instance: int | None = None

    def __post_init__(self) -> None:
        _check_id("object id", self.object_id)
        _check_id("object instance", self.object_instance)
        _check_id("resource id", self.resource_id)
        _check_id("resource instance", self.resource_instance)
        if self.resource_id is not None and self.object_instance is None:
            raise ValueError("a resource id needs an object instance")
        if self.resource_instance is not None and self.resource_id is None:
            raise ValueError("a resource instance needs a resource id")

    # ---- construction / formatting -------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> LwM2MPath:
        """Parse ``/3``, ``/3/0``, ``/3/0/1``, ``/3/0/1/2`` (leading and one trailing ``/`` optional).

        The root ``/`` and empty strings are not LwM2M paths and raise ValueError. Paths are immutable and a
        fleet reports the same few names over and over (every SenML record of every /5/0 read), so valid ones are
        remembered (a bounded table, dropped whole when full).
        """
        known = _PARSED.get(text) if isinstance(text, str) else None
        if known is not None:
            return known
        path = cls._parse(text)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[text] = path
        return path

    @classmethod
    def _parse(cls, text: str) -> LwM2MPath:
        if not isinstance(text, str):
            raise ValueError(f"path must be a str, got {type(text).__name__}")
        if len(text) > _MAX_TEXT:
            raise ValueError(f"path too long ({len(text)} chars)")
        body = text[1:] if text.startswith("/") else text
        if body.endswith("/"):
            body = body[:-1]
        if not body:
            raise ValueError(f"{text!r} is not an LwM2M path: it has no object id ({SHAPE})")
        parts = body.split("/")
        if len(parts) > 4:
            raise ValueError(f"{text!r} is not an LwM2M path: it has {len(parts)} levels, at most 4 ({SHAPE})")
        ids: list[int] = []
        for part in parts:
            if not _SEGMENT.fullmatch(part):
                raise ValueError(f"{text!r} is not an LwM2M path: {part!r} is not a number ({SHAPE})")
            ids.append(int(part))
        return cls.from_ids(*ids)

    @classmethod
    def from_ids(cls, *ids: int) -> LwM2MPath:
        """Build from 1..4 ids: ``from_ids(3, 0, 1)`` is ``/3/0/1``."""
        if not 1 <= len(ids) <= 4:
            raise ValueError(f"a path has 1 to 4 ids, got {len(ids)}")
        padded = (*ids, None, None, None)
        return cls(padded[0], padded[1], padded[2], padded[3])  # type: ignore[arg-type]

    def __str__(self) -> str:
        return "/" + "/".join(str(i) for i in self.ids)

    def __repr__(self) -> str:
        return f"LwM2MPath({str(self)!r})"

    # ---- structure -----------------------------------------------------------------------------
    @property
    def ids(self) -> tuple[int, ...]:
        """The ids that are set, outermost first."""
        out: list[int] = [self.object_id]
        for part in (self.object_instance, self.resource_id, self.resource_instance):
            if part is None:
                break
            out.append(part)
        return tuple(out)

    @property
    def depth(self) -> int:
        """1 for an object path … 4 for a resource-instance path."""
        return len(self.ids)

    @property
    def level(self) -> PathLevel:
        return _LEVELS[self.depth - 1]

    @property
    def uri_path(self) -> tuple[str, ...]:
        """CoAP Uri-Path segments, e.g. ``("3", "0", "1")``."""
        return tuple(str(i) for i in self.ids)

    @property
    def parent(self) -> LwM2MPath:
        """The enclosing path; an object path has none (ValueError)."""
        ids = self.ids
        if len(ids) == 1:
            raise ValueError(f"object path {self} has no parent")
        return LwM2MPath.from_ids(*ids[:-1])

    def child(self, i: int) -> LwM2MPath:
        """The path one level down; a resource-instance path has no children (ValueError)."""
        ids = self.ids
        if len(ids) == 4:
            raise ValueError(f"resource-instance path {self} has no children")
        return LwM2MPath.from_ids(*ids, i)

    def is_prefix_of(self, other: LwM2MPath) -> bool:
        """True when ``other`` is this path or lies below it (``/3/0`` is a prefix of ``/3/0/1/2``)."""
        mine = self.ids
        return other.ids[: len(mine)] == mine

    def truncate(self, level: PathLevel) -> LwM2MPath:
        """This path cut to ``level`` (which must not be deeper than the path itself)."""
        depth = _LEVELS.index(level) + 1
        if depth > self.depth:
            raise ValueError(f"{self} is shallower than {level}")
        return LwM2MPath.from_ids(*self.ids[:depth])

    # ---- ordering: a parent sorts before its children --------------------------------------------
    def _key(self) -> tuple[int, ...]:
        return self.ids

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, LwM2MPath):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, LwM2MPath):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, LwM2MPath):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, LwM2MPath):
            return NotImplemented
        return self._key() >= other._key()
