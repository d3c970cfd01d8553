"""OMA DDF (Device Description Framework) XML loader.

DDF files may come from device vendors, so parsing goes through defusedxml (no DTDs, no entities, no
external references) and has a size cap. Any problem raises DDFError naming the file and the element.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from lwm2m_server.protocol.model import OPERATIONS, ObjectDefinition, ResourceDefinition, ResourceType
from lwm2m_server.protocol.paths import MAX_ID

MAX_DDF_BYTES = 2 * 1024 * 1024
_VERSION = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}")


class DDFError(ValueError):
    """A DDF file is unreadable, not XML, or not a valid object definition."""

    def __init__(self, file: str, element: str, message: str) -> None:
        super().__init__(f"{file}: {element}: {message}")
        self.file = file
        self.element = element
        self.message = message


def _local(tag: str) -> str:
    """Strip an ``{namespace}`` prefix so namespaced and plain DDFs both load."""
    return tag.rsplit("}", 1)[-1]


class _Ctx:
    """Carries the file name for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, element: str, message: str) -> DDFError:
        return DDFError(self.file, element, message)

    def child(self, parent: Element, name: str, where: str, *, required: bool = True) -> Element | None:
        found = [c for c in parent if _local(c.tag) == name]
        if len(found) > 1:
            raise self.fail(f"{where}/{name}", "appears more than once")
        if not found:
            if required:
                raise self.fail(f"{where}/{name}", "missing")
            return None
        return found[0]

    def text(self, parent: Element, name: str, where: str, *, required: bool = True, default: str = "") -> str:
        el = self.child(parent, name, where, required=required)
        if el is None:
            return default
        return (el.text or "").strip()

    def integer(self, parent: Element, name: str, where: str) -> int:
        raw = self.text(parent, name, where)
        return self.to_id(raw, f"{where}/{name}")

    def to_id(self, raw: str, element: str) -> int:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 5:
            raise self.fail(element, f"{raw!r} is not an id")
        value = int(raw)
        if value > MAX_ID:
            raise self.fail(element, f"{value} out of range 0..{MAX_ID}")
        return value

    def choice(self, parent: Element, name: str, where: str, options: dict[str, bool]) -> bool:
        raw = self.text(parent, name, where)
        try:
            return options[raw.casefold()]
        except KeyError:
            allowed = "/".join(sorted(options))
            raise self.fail(f"{where}/{name}", f"{raw!r} is not one of {allowed}") from None

    def version(self, parent: Element, name: str, where: str) -> str:
        raw = self.text(parent, name, where, required=False, default="1.0") or "1.0"
        if not _VERSION.fullmatch(raw):
            raise self.fail(f"{where}/{name}", f"{raw!r} is not a version like 1.1")
        return raw


_MULTIPLE = {"multiple": True, "single": False}
_MANDATORY = {"mandatory": True, "optional": False}


def _parse_item(ctx: _Ctx, item: Element, where: str) -> ResourceDefinition:
    raw_id = item.get("ID")
    if raw_id is None:
        raise ctx.fail(f"{where}/Item", "missing ID attribute")
    rid = ctx.to_id(raw_id.strip(), f"{where}/Item[@ID={raw_id!r}]")
    here = f"{where}/Item[@ID={rid}]"
    name = ctx.text(item, "Name", here)
    if not name:
        raise ctx.fail(f"{here}/Name", "empty")
    ops = ctx.text(item, "Operations", here).upper()
    if ops == "NONE":
        ops = ""
    if ops not in OPERATIONS:
        raise ctx.fail(f"{here}/Operations", f"{ops!r} is not one of R, W, RW, E or empty")
    multiple = ctx.choice(item, "MultipleInstances", here, _MULTIPLE)
    mandatory = ctx.choice(item, "Mandatory", here, _MANDATORY)
    type_text = ctx.text(item, "Type", here)
    try:
        rtype = ResourceType.from_ddf(type_text)
    except ValueError:
        raise ctx.fail(f"{here}/Type", f"unknown type {type_text!r}") from None
    if ops == "E" and rtype is not ResourceType.NONE:
        raise ctx.fail(f"{here}/Type", f"executable resource must have an empty type, got {type_text!r}")
    if ops != "E" and rtype is ResourceType.NONE:
        raise ctx.fail(f"{here}/Type", "only executable resources may have an empty type")
    return ResourceDefinition(
        id=rid,
        name=name,
        operations=ops,
        multiple=multiple,
        mandatory=mandatory,
        type=rtype,
        units=ctx.text(item, "Units", here, required=False),
        description=ctx.text(item, "Description", here, required=False),
        range_enumeration=ctx.text(item, "RangeEnumeration", here, required=False),
    )


def _urn_kind(object_id: int) -> str:
    """URN namespace: ``oma`` for OMA objects, ``x`` for the private range 26241..32768, else ``ext``."""
    if object_id < 2048:
        return "oma"
    if 26241 <= object_id <= 32768:
        return "x"
    return "ext"


def _parse_object(ctx: _Ctx, obj: Element, index: int) -> ObjectDefinition:
    where = f"LWM2M/Object[{index}]"
    object_id = ctx.integer(obj, "ObjectID", where)
    where = f"LWM2M/Object[ObjectID={object_id}]"
    name = ctx.text(obj, "Name", where)
    if not name:
        raise ctx.fail(f"{where}/Name", "empty")
    urn = ctx.text(obj, "ObjectURN", where, required=False)
    if not urn:
        urn = f"urn:oma:lwm2m:{_urn_kind(object_id)}:{object_id}"
    elif not urn.startswith("urn:oma:lwm2m:"):
        raise ctx.fail(f"{where}/ObjectURN", f"{urn!r} does not start with urn:oma:lwm2m:")
    resources_el = ctx.child(obj, "Resources", where)
    assert resources_el is not None
    resources: dict[int, ResourceDefinition] = {}
    for item in resources_el:
        if _local(item.tag) != "Item":
            raise ctx.fail(f"{where}/Resources/{_local(item.tag)}", "unexpected element (expected Item)")
        res = _parse_item(ctx, item, f"{where}/Resources")
        if res.id in resources:
            raise ctx.fail(f"{where}/Resources/Item[@ID={res.id}]", "duplicate resource id")
        resources[res.id] = res
    return ObjectDefinition(
        id=object_id,
        name=name,
        urn=urn,
        object_version=ctx.version(obj, "ObjectVersion", where),
        lwm2m_version=ctx.version(obj, "LWM2MVersion", where),
        multiple=ctx.choice(obj, "MultipleInstances", where, _MULTIPLE),
        mandatory=ctx.choice(obj, "Mandatory", where, _MANDATORY),
        description=ctx.text(obj, "Description1", where, required=False),
        resources=resources,
    )


def load_ddf(source: str | Path | bytes, *, name: str | None = None) -> list[ObjectDefinition]:
    """Parse a DDF file (a path, or the XML bytes) into its object definitions.

    ``name`` is the file name used in error messages when ``source`` is bytes.
    """
    if isinstance(source, bytes):
        file = name or "<bytes>"
        data = source
    else:
        file = name or str(source)
        try:
            with open(source, "rb") as fh:
                data = fh.read(MAX_DDF_BYTES + 1)
        except OSError as exc:
            raise DDFError(file, "(file)", f"cannot read: {exc.strerror or exc}") from None
    ctx = _Ctx(file)
    if len(data) > MAX_DDF_BYTES:
        raise ctx.fail("(file)", f"larger than {MAX_DDF_BYTES} bytes")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ctx.fail("(document)", f"unsafe XML rejected: {type(exc).__name__}") from None
    except SafeET.ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        raise ctx.fail(f"(line {line}, column {col})", f"malformed XML: {exc}") from None
    if _local(root.tag) != "LWM2M":
        raise ctx.fail(_local(root.tag), "root element must be LWM2M")
    objects: list[ObjectDefinition] = []
    for index, child in enumerate(root):
        if _local(child.tag) != "Object":
            raise ctx.fail(f"LWM2M/{_local(child.tag)}", "unexpected element (expected Object)")
        objects.append(_parse_object(ctx, child, index))
    if not objects:
        raise ctx.fail("LWM2M", "no Object element")
    return objects


def load_ddf_dir(path: str | Path) -> list[ObjectDefinition]:
    """Load every ``*.xml`` file in a directory, sorted by file name; duplicate object ids are an error."""
    directory = Path(path)
    if not directory.is_dir():
        raise DDFError(str(directory), "(directory)", "not a directory")
    seen: dict[int, Path] = {}
    out: list[ObjectDefinition] = []
    for file in sorted(directory.glob("*.xml")):
        for obj in load_ddf(file):
            if obj.id in seen:
                where = f"LWM2M/Object[ObjectID={obj.id}]"
                raise DDFError(str(file), where, f"object id also defined in {seen[obj.id]}")
            seen[obj.id] = file
            out.append(obj)
    return out


def load_many(paths: Iterable[str | Path]) -> list[ObjectDefinition]:
    """Load several DDF files (or directories) in order."""
    out: list[ObjectDefinition] = []
    for p in paths:
        out.extend(load_ddf_dir(p) if Path(p).is_dir() else load_ddf(p))
    return out
