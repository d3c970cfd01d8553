"""The one JSON encoding of LwM2M values, shared by the REST API, events (SSE, MQTT, the event log) and tools.

A flat mapping of leaf path to value, the shape ``tinymlaas decode`` prints: opaque as ``{"hex": "..."}``,
objlnk as ``"3:0"``, time as int seconds, non-finite floats as strings (JSON has no NaN/Infinity).
Strings, integers and booleans are unchanged.
"""

from __future__ import annotations

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


__all__ = ["content_to_json", "value_to_json"]
