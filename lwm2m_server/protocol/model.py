"""The LwM2M object model: immutable object/resource definitions and a lookup registry.

Definitions come from OMA DDF XML (see ``ddf.py``); the registry is what codecs consult to type values.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.resources import OBJECTS_DIR as OBJECTS_DIR  # the DDF XML files (bundled in the wheel)


class ResourceType(StrEnum):
    """DDF ``<Type>`` values. ``NONE`` is the (empty) type of executable resources."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"

    @classmethod
    def from_ddf(cls, text: str) -> ResourceType:
        """Map DDF type text (case-insensitive; empty means executable/none) to a member."""
        wanted = text.strip().casefold()
        if wanted == "":
            return cls.NONE
        for member in cls:
            if member.value.casefold() == wanted:
                return member
        raise ValueError(f"unknown resource type {text!r}")


@dataclass(frozen=True, slots=True)
class ObjectLink:
    """An Objlnk value ``object_id:instance_id``; ``65535:65535`` is the null link."""

    object_id: int
    instance_id: int

    def __post_init__(self) -> None:
        for name, value in (("object id", self.object_id), ("instance id", self.instance_id)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise ValueError(f"objlnk {name} must be an int 0..65535, got {value!r}")

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"

    @classmethod
    def parse(cls, text: str) -> ObjectLink:
        """Parse ``"3:0"``."""
        left, sep, right = text.partition(":")
        if not sep or not left.isascii() or not right.isascii() or not left.isdigit() or not right.isdigit():
            raise ValueError(f"invalid objlnk {text!r}, expected 'object:instance'")
        if len(left) > 5 or len(right) > 5:
            raise ValueError(f"invalid objlnk {text!r}: id too long")
        return cls(int(left), int(right))

    @property
    def is_null(self) -> bool:
        return self.object_id == 0xFFFF and self.instance_id == 0xFFFF


Value = int | float | bool | str | bytes | ObjectLink
"""A leaf value. TIME values are int (seconds since the epoch); CORELNK values are str."""

Content = dict[LwM2MPath, Value]
"""Flat content: leaf resource / resource-instance paths to values."""

OPERATIONS = frozenset({"", "R", "W", "RW", "E"})


@dataclass(frozen=True, slots=True)
class ResourceDefinition:
    """One ``<Item>`` of a DDF file."""

    id: int
    name: str
    operations: str
    multiple: bool
    mandatory: bool
    type: ResourceType
    units: str = ""
    description: str = ""
    range_enumeration: str = ""

    @property
    def readable(self) -> bool:
        return "R" in self.operations

    @property
    def writable(self) -> bool:
        return "W" in self.operations

    @property
    def executable(self) -> bool:
        return self.operations == "E"


def _freeze(resources: Mapping[int, ResourceDefinition]) -> Mapping[int, ResourceDefinition]:
    return MappingProxyType(dict(sorted(resources.items())))


@dataclass(frozen=True)
class ObjectDefinition:
    """One ``<Object>`` of a DDF file; ``resources`` is a read-only mapping sorted by id."""

    id: int
    name: str
    urn: str
    object_version: str
    lwm2m_version: str
    multiple: bool
    mandatory: bool
    description: str
    resources: Mapping[int, ResourceDefinition] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resources", _freeze(self.resources))

    def __hash__(self) -> int:
        return hash((self.id, self.urn, self.object_version))

    def resource(self, resource_id: int) -> ResourceDefinition | None:
        return self.resources.get(resource_id)

    @property
    def mandatory_resources(self) -> tuple[ResourceDefinition, ...]:
        return tuple(r for r in self.resources.values() if r.mandatory)


class ObjectRegistry:
    """An immutable lookup table of object definitions by id.

    ``with_objects`` returns a new registry; the default one (repo ``objects/``) is loaded once and cached.
    """

    __slots__ = ("_objects",)

    def __init__(self, defs: Iterable[ObjectDefinition] = ()) -> None:
        objects: dict[int, ObjectDefinition] = {}
        for d in defs:
            objects[d.id] = d
        self._objects: Mapping[int, ObjectDefinition] = MappingProxyType(dict(sorted(objects.items())))

    def get(self, object_id: int) -> ObjectDefinition | None:
        return self._objects.get(object_id)

    def resource(self, path: LwM2MPath) -> ResourceDefinition | None:
        """The definition of the resource ``path`` points at (or into); None if unknown or no resource id."""
        if path.resource_id is None:
            return None
        obj = self._objects.get(path.object_id)
        return None if obj is None else obj.resources.get(path.resource_id)

    def resource_type(self, path: LwM2MPath) -> ResourceType | None:
        res = self.resource(path)
        return None if res is None else res.type

    def with_objects(self, defs: Iterable[ObjectDefinition]) -> ObjectRegistry:
        """A new registry with ``defs`` added (replacing definitions with the same id)."""
        return ObjectRegistry([*self._objects.values(), *defs])

    @property
    def objects(self) -> Mapping[int, ObjectDefinition]:
        return self._objects

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def __iter__(self) -> Iterator[ObjectDefinition]:
        return iter(self._objects.values())

    def __len__(self) -> int:
        return len(self._objects)

    def __repr__(self) -> str:
        return f"ObjectRegistry({sorted(self._objects)})"

    @classmethod
    def from_dir(cls, path: str | Path) -> ObjectRegistry:
        """Load every ``*.xml`` in ``path`` (sorted by name); DDFError on the first bad file."""
        from lwm2m_server.protocol.ddf import load_ddf_dir

        return cls(load_ddf_dir(path))

    @classmethod
    def default(cls) -> ObjectRegistry:
        """The registry of the repo's ``objects/`` directory (loaded once, cached)."""
        return _default_registry()


@functools.cache
def _default_registry() -> ObjectRegistry:
    return ObjectRegistry.from_dir(OBJECTS_DIR)
