"""JSON <-> LwM2M value conversion for the REST API.

The JSON shape is the one ``tinymlaas decode`` prints: a flat mapping of leaf path to value, with
opaque as ``{"hex": "..."}``, objlnk as ``"3:0"``, time as int seconds. Write bodies are coerced to
the resource's declared type from the object model, so ``"3:0"`` becomes an ObjectLink only where
the model says Objlnk.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import Any

from lwm2m_server.protocol.jsonvalues import content_to_json, to_jsonable, value_to_json
from lwm2m_server.protocol.model import Content, ObjectLink, ObjectRegistry, ResourceType, Value
from lwm2m_server.protocol.paths import LwM2MPath

__all__ = ["BodyError", "body_to_content", "coerce_value", "content_to_json", "to_jsonable", "value_to_json"]


class BodyError(ValueError):
    """A request body that cannot be turned into LwM2M content (HTTP 400)."""


# ---- outbound: Python -> JSON: value_to_json, content_to_json and to_jsonable live in protocol/jsonvalues.py ----


# ---- inbound: JSON -> Python ---------------------------------------------------------------------
def _opaque(raw: Any, where: str) -> bytes:
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((kind, text),) = raw.items()
        if isinstance(text, str):
            try:
                if kind == "hex":
                    return bytes.fromhex(text)
                if kind == "base64":
                    return base64.b64decode(text, validate=True)
            except (ValueError, binascii.Error) as exc:
                raise BodyError(f"{where}: invalid {kind} opaque value") from exc
    raise BodyError(f'{where}: opaque values are {{"hex": "..."}} or {{"base64": "..."}}')


def _integer(raw: Any, where: str, *, unsigned: bool = False) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise BodyError(f"{where}: expected an integer, got {type(raw).__name__}")
    if isinstance(raw, float):
        if not raw.is_integer():
            raise BodyError(f"{where}: expected an integer, got {raw}")
        raw = int(raw)
    if not -(2**63) <= raw < 2**64 or (not unsigned and raw >= 2**63):
        raise BodyError(f"{where}: integer {raw} out of 64-bit range")
    if unsigned and raw < 0:
        raise BodyError(f"{where}: expected an unsigned integer, got {raw}")
    return raw


def coerce_value(raw: Any, rtype: ResourceType | None, where: str) -> Value:
    """A JSON value as the LwM2M value of type ``rtype`` (None = unknown resource: infer from JSON)."""
    if rtype is None:
        if isinstance(raw, bool | str):
            return raw
        if isinstance(raw, int):
            return _integer(raw, where)
        if isinstance(raw, float):
            return coerce_value(raw, ResourceType.FLOAT, where)
        if isinstance(raw, Mapping):
            return _opaque(raw, where)
        raise BodyError(f"{where}: unsupported JSON value of type {type(raw).__name__}")
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        if not isinstance(raw, str):
            raise BodyError(f"{where}: expected a string, got {type(raw).__name__}")
        return raw
    if rtype is ResourceType.INTEGER:
        return _integer(raw, where)
    if rtype is ResourceType.UNSIGNED:
        return _integer(raw, where, unsigned=True)
    if rtype is ResourceType.TIME:
        return _integer(raw, where)
    if rtype is ResourceType.FLOAT:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise BodyError(f"{where}: expected a number, got {type(raw).__name__}")
        value = float(raw)
        if not math.isfinite(value):
            raise BodyError(f"{where}: float must be finite")
        return value
    if rtype is ResourceType.BOOLEAN:
        if not isinstance(raw, bool):
            raise BodyError(f"{where}: expected true or false, got {type(raw).__name__}")
        return raw
    if rtype is ResourceType.OPAQUE:
        return _opaque(raw, where)
    if rtype is ResourceType.OBJLNK:
        if not isinstance(raw, str):
            raise BodyError(f'{where}: objlnk values are strings like "3:0"')
        try:
            return ObjectLink.parse(raw)
        except ValueError as exc:
            raise BodyError(f"{where}: {exc}") from exc
    raise BodyError(f"{where}: resource is not writable (type {rtype.value})")


def _key_path(base: LwM2MPath, key: str) -> LwM2MPath:
    """A body key: absolute ``/3/0/1`` (must lie under ``base``) or relative ``1`` / ``6/0``."""
    try:
        path = LwM2MPath.parse(key) if key.startswith("/") else LwM2MPath.parse(f"{base}/{key}")
    except ValueError as exc:
        raise BodyError(f"bad key {key!r}: {exc}") from exc
    if not base.is_prefix_of(path) or path == base:
        raise BodyError(f"key {key!r} is not below {base}")
    if path.resource_id is None:
        raise BodyError(f"key {key!r} must name a resource or resource instance")
    return path


def _is_multiple(path: LwM2MPath, model: ObjectRegistry) -> bool:
    res = model.resource(path)
    return bool(res is not None and res.multiple)


def body_to_content(base: LwM2MPath, body: Any, model: ObjectRegistry) -> Content:
    """Turn a write body into flat content below ``base``.

    * resource / resource-instance path + scalar -> ``{base: value}``;
    * any path + object ``{"1": v, "/3/0/2": v, "6/0": v}`` -> leaf paths (a multiple resource's
      value may itself be ``{"0": v, "1": v}`` for its instances).
    """
    if base.resource_id is None and base.object_instance is None:
        raise BodyError("write needs an object-instance, resource or resource-instance path")
    content: Content = {}
    if not isinstance(body, Mapping) or (base.resource_id is not None and _is_opaque_literal(base, body, model)):
        if base.resource_id is None:
            raise BodyError(f"writing {base} needs a JSON object mapping resource ids to values")
        if base.resource_instance is None and _is_multiple(base, model):
            raise BodyError(f"{base} is a multiple resource: send {{\"0\": value, ...}}")
        content[base] = coerce_value(body, model.resource_type(base), str(base))
        return content
    if not body:
        raise BodyError("empty write body")
    for key, raw in body.items():
        path = _key_path(base, str(key))
        if path.resource_instance is None and _is_multiple(path, model) and isinstance(raw, Mapping) \
                and not _is_opaque_literal(path, raw, model):
            for sub, sub_raw in raw.items():
                inst = _key_path(path, str(sub))
                content[inst] = coerce_value(sub_raw, model.resource_type(inst), str(inst))
            continue
        content[path] = coerce_value(raw, model.resource_type(path), str(path))
    return content


def _is_opaque_literal(path: LwM2MPath, body: Any, model: ObjectRegistry) -> bool:
    """True when ``body`` is an opaque value (``{"hex": ...}``) rather than a path mapping."""
    if not (isinstance(body, Mapping) and len(body) == 1 and next(iter(body)) in ("hex", "base64")):
        return False
    rtype = model.resource_type(path) if path.resource_id is not None else None
    return rtype in (ResourceType.OPAQUE, None)
