"""``GET /api/objects``: the object model (DDF) the server decodes with, so a client can draw a device's objects
and instances as a tree of named resources with their operations, types and units."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from lwm2m_server.api import access
from lwm2m_server.api.deps import ServerDep
from lwm2m_server.protocol.model import ObjectDefinition

router = APIRouter(tags=["objects"])


class ResourceOut(BaseModel):
    id: int
    name: str
    operations: str
    multiple: bool
    mandatory: bool
    type: str
    units: str
    readable: bool
    writable: bool
    executable: bool


class ObjectOut(BaseModel):
    id: int
    name: str
    urn: str
    multiple: bool
    mandatory: bool
    description: str
    resources: list[ResourceOut]


def _object(obj: ObjectDefinition) -> ObjectOut:
    resources: list[Any] = [
        ResourceOut(id=r.id, name=r.name, operations=r.operations, multiple=r.multiple, mandatory=r.mandatory,
                    type=str(r.type), units=r.units, readable=r.readable, writable=r.writable,
                    executable=r.executable)
        for r in obj.resources.values()
    ]
    return ObjectOut(id=obj.id, name=obj.name, urn=obj.urn, multiple=obj.multiple, mandatory=obj.mandatory,
                     description=obj.description, resources=resources)  # fmt: skip


@router.get("/api/objects", response_model=list[ObjectOut], summary="The LwM2M object definitions (DDF) known")
async def list_objects(server: ServerDep) -> list[ObjectOut]:
    return [_object(obj) for obj in sorted(access.object_model(server), key=lambda o: o.id)]
