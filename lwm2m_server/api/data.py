"""``GET /api/devices/{ep}/data``: values the device pushed with the LwM2M Send operation, with their times.

Live Sends also go out on ``/api/events`` as ``send`` events and on MQTT ``{prefix}/devices/{ep}/send``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from lwm2m_server.api.deps import ServerDep
from lwm2m_server.api.devices import EndpointParam
from lwm2m_server.api.errors import ERROR_RESPONSES, bad_request
from lwm2m_server.protocol.paths import LwM2MPath

router = APIRouter(tags=["send"])


class SentValue(BaseModel):
    path: str
    ts: float = Field(description="The value's time (SenML bt + t), else when it arrived; epoch seconds")
    value: Any = Field(description='As in reads: opaque as {"hex": ...}, objlnk as "3:0"')
    received_at: float


class SentValues(BaseModel):
    endpoint: str
    items: list[SentValue]


@router.get("/api/devices/{endpoint}/data", response_model=SentValues, responses=ERROR_RESPONSES,
            summary="Values the device pushed with Send (LwM2M 1.1), oldest first")
async def sent_values(
    server: ServerDep,
    endpoint: EndpointParam,
    path: Annotated[str | None, Query(max_length=64, description="Only values at or below this path")] = None,
    since: Annotated[float | None, Query(description="Only values with ts >= since")] = None,
    until: Annotated[float | None, Query(description="Only values with ts <= until")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> SentValues:
    prefix = None
    if path is not None:
        try:
            prefix = str(LwM2MPath.parse(path))
        except ValueError as exc:
            raise bad_request(f"bad path: {exc}") from exc
    rows = await server.send.values.query(endpoint, path=prefix, since=since, until=until, limit=limit)
    return SentValues(endpoint=endpoint, items=[SentValue(**r) for r in rows])
