"""The one JSON encoding of LwM2M values, shared by the REST API, events (SSE, MQTT, the event log) and tools;
``to_jsonable`` turns whole event payloads and profiles into JSON-ready data with it.

A flat mapping of leaf path to value, the shape ``tinymlaas decode`` prints: opaque as ``{"hex": "..."}``,
objlnk as ``"3:0"``, time as int seconds, non-finite floats as strings (JSON has no NaN/Infinity).
Strings, integers and booleans are unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Mapping
from typing import Any

from lwm2m_server.protocol.model import ObjectLink, Value
from lwm2m_server.protocol.paths import LwM2MPath


def value_to_json(value: Any) -> Any:
    """One LwM2M value as JSON: bytes -> {"hex"}, ObjectLink -> "3:0", non-finite floats -> str."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"hex": bytes(value).hex()}
    if isinstance(value, ObjectLink):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def content_to_json(content: Mapping[LwM2MPath, Value]) -> dict[str, Any]:
    """Flat content as ``{"/3/0/1": value}``, ordered by path."""
    return {str(path): value_to_json(content[path]) for path in sorted(content)}


MAX_DEPTH = 32
"""How deep :func:`to_jsonable` follows containers: anything deeper is written as its ``repr()``."""


def to_jsonable(obj: Any, _depth: int = 0) -> Any:
    """Best-effort conversion of event payloads / profiles (dataclasses, paths, sets, bytes) to JSON."""
    if _depth > MAX_DEPTH:
        return repr(obj)
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float | bytes | bytearray | memoryview | ObjectLink):
        return value_to_json(obj)
    if isinstance(obj, LwM2MPath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value, _depth + 1)
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name), _depth + 1) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, set | frozenset):
        items = [to_jsonable(v, _depth + 1) for v in obj]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(obj, list | tuple):
        return [to_jsonable(v, _depth + 1) for v in obj]
    if hasattr(obj, "model_dump"):
        return to_jsonable(obj.model_dump(), _depth + 1)
    return str(obj)


__all__ = ["MAX_DEPTH", "content_to_json", "to_jsonable", "value_to_json"]
