"""Object 5 (Firmware Update) and 32002 (TinyML Model) paths, and picking their values out of content/events."""

from __future__ import annotations

from typing import Any

from lwm2m_server.protocol.fwupdate import FW_DELIVERY, FW_PROTOCOLS, FW_RESULT, FW_STATE
from lwm2m_server.protocol.paths import LwM2MPath

FW = FW_STATE.parent
STATE, RESULT, PROTOCOLS, DELIVERY = (int(p.resource_id or 0) for p in (FW_STATE, FW_RESULT, FW_PROTOCOLS, FW_DELIVERY))
MODEL = LwM2MPath(32002, 0)
MODEL_SHA, MODEL_HEALTH = 2, 12


def fw_int(content: dict[LwM2MPath, Any], rid: int) -> int | None:
    v = content.get(FW.child(rid))
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def protocols_of(content: dict[LwM2MPath, Any]) -> list[int]:
    out = []
    for path, v in content.items():
        if path.object_id == 5 and path.resource_id == PROTOCOLS and isinstance(v, int):
            out.append(v)
    return out


def values_from_notification(data: dict[str, Any]) -> tuple[int | None, int | None]:
    """Pick /5/0/3 and /5/0/5 out of a notification event (content keyed by path strings or LwM2MPath)."""
    content = data.get("content") or data.get("values") or {}
    state = result = None
    for key, value in content.items():
        text = str(key)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if text == str(FW_STATE):
            state = value
        elif text == str(FW_RESULT):
            result = value
    return state, result
