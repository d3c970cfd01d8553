"""A synthetic object 40000 covering every resource type, single and multiple, plus a 16-bit resource id."""

from __future__ import annotations

from lwm2m_server.protocol.model import ObjectDefinition, ObjectRegistry, ResourceDefinition, ResourceType

SYNTH = 40000
TYPES = [t for t in ResourceType if t is not ResourceType.NONE]
"""Resource ``i`` (0..8) is single of TYPES[i]; resource ``10 + i`` is the multiple one; 9 is executable."""

BIG_ID = 300  # a String resource whose id needs the 16-bit TLV identifier


def _res(rid: int, rtype: ResourceType, multiple: bool) -> ResourceDefinition:
    ops = "E" if rtype is ResourceType.NONE else "RW"
    return ResourceDefinition(rid, f"r{rid}", ops, multiple, False, rtype)


def synthetic_object() -> ObjectDefinition:
    resources = {i: _res(i, t, False) for i, t in enumerate(TYPES)}
    resources |= {10 + i: _res(10 + i, t, True) for i, t in enumerate(TYPES)}
    resources[9] = _res(9, ResourceType.NONE, False)
    resources[BIG_ID] = _res(BIG_ID, ResourceType.STRING, False)
    return ObjectDefinition(SYNTH, "Synthetic", "urn:test:40000", "1.0", "1.1", True, False, "every type", resources)


def single_id(rtype: ResourceType) -> int:
    return TYPES.index(rtype)


def multi_id(rtype: ResourceType) -> int:
    return 10 + TYPES.index(rtype)


MODEL = ObjectRegistry.default().with_objects([synthetic_object()])
