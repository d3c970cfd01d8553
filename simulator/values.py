"""What the simulated device answers a bad operation with (:class:`LwM2MError`, carrying the CoAP code) and
the check that a written value fits its resource's type (4.00 otherwise, 4.05 for an executable resource)."""

from __future__ import annotations

from lwm2m_server.protocol.model import ObjectLink, ResourceDefinition, ResourceType, Value


class LwM2MError(Exception):
    """An operation failed; ``code`` is the CoAP response code ("4.04", "4.05", ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


_PYTHON_TYPES: dict[ResourceType, tuple[type, ...]] = {
    ResourceType.STRING: (str,),
    ResourceType.INTEGER: (int,),
    ResourceType.UNSIGNED: (int,),
    ResourceType.FLOAT: (float, int),
    ResourceType.BOOLEAN: (bool,),
    ResourceType.OPAQUE: (bytes,),
    ResourceType.TIME: (int,),
    ResourceType.OBJLNK: (ObjectLink,),
    ResourceType.CORELNK: (str,),
}


def check_type(definition: ResourceDefinition, value: Value) -> Value:
    """Return ``value`` (floats normalised) if it fits the resource type, else LwM2MError 4.00."""
    allowed = _PYTHON_TYPES.get(definition.type)
    if allowed is None:
        raise LwM2MError("4.05", f"resource {definition.id} ({definition.name}) holds no value")
    if isinstance(value, bool) and bool not in allowed:
        raise LwM2MError("4.00", f"resource {definition.id} expects {definition.type}, got a boolean")
    if not isinstance(value, allowed):
        raise LwM2MError("4.00", f"resource {definition.id} expects {definition.type}, got {type(value).__name__}")
    if definition.type is ResourceType.UNSIGNED and isinstance(value, int) and value < 0:
        raise LwM2MError("4.00", f"resource {definition.id} is unsigned, got {value}")
    if definition.type is ResourceType.FLOAT:
        return float(value)  # type: ignore[arg-type]
    return value
