"""``GET /api/events``: the server's event bus as Server-Sent Events.

Each event is ``event: <type>`` plus ``data: {"type", "endpoint", "data", "ts"}`` (and ``"node"``, the node id,
on an event that happened on another node of a cluster). A comment line
(``: keep-alive``) goes out when nothing happened for ``keepalive`` seconds, so proxies and clients can
tell a quiet stream from a dead one. A slow client loses its oldest events (the bus's bounded queue),
never slows the server; the number lost so far is sent as a ``: dropped N`` comment. Revoking the token a
stream was opened with ends it (``: token revoked``) within one keep-alive interval.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from lwm2m_server.api.deps import ServerDep
from lwm2m_server.api.errors import ERROR_RESPONSES
from lwm2m_server.events import Event

router = APIRouter(tags=["events"])

DEFAULT_KEEPALIVE_S = 15.0


def format_sse(event: Event) -> str:
    """One SSE frame for an :class:`lwm2m_server.events.Event` (its JSON is encoded once for every stream)."""
    payload = event.to_json()
    kind = "".join(ch for ch in str(event.type) if ch not in "\r\n") or "message"
    return f"event: {kind}\ndata: {payload}\n\n"


def close_event_streams(app: FastAPI) -> None:
    """End every open SSE stream (called when the HTTP server shuts down)."""
    for sub in list(getattr(app.state, "event_streams", ())):
        sub.close()


async def _stream(request: Request, sub: Any, keepalive: float) -> AsyncIterator[str]:
    streams: set[Any] = request.app.state.event_streams
    streams.add(sub)
    reported_drops = 0
    principal = getattr(request.state, "principal", None)  # set by the auth guard
    tokens = request.app.state.tokens
    try:
        yield "retry: 2000\n: connected\n\n"
        if request.app.state.closing.is_set():
            return  # shutting down: end at once instead of holding the graceful shutdown
        while True:
            if principal is not None and not tokens.is_active(principal.token_id):
                yield ": token revoked\n\n"
                return  # a revoked token's stream ends within one keep-alive interval
            try:
                event = await sub.get(timeout=keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            except StopAsyncIteration:
                return
            if sub.dropped != reported_drops:
                reported_drops = sub.dropped
                yield f": dropped {reported_drops}\n\n"
            yield format_sse(event)
    finally:
        streams.discard(sub)
        sub.close()


@router.get(
    "/api/events",
    summary="Server-Sent Events stream of registrations, notifications, sleep/wake, OTA and rollout events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An endless SSE stream"},
               **ERROR_RESPONSES},
)
async def events(
    request: Request,
    server: ServerDep,
    endpoint: Annotated[str | None, Query(max_length=256, description="Only this device's events")] = None,
    type: Annotated[list[str] | None, Query(description="Only these event types (repeatable)")] = None,
    keepalive: Annotated[float | None, Query(gt=0, le=300, description="Keep-alive comment interval, s")] = None,
) -> StreamingResponse:
    interval = keepalive if keepalive is not None else getattr(request.app.state, "sse_keepalive_s",
                                                                DEFAULT_KEEPALIVE_S)
    sub = server.events.subscribe(types=set(type) if type else None, endpoint=endpoint, remote=True)
    return StreamingResponse(
        _stream(request, sub, interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
