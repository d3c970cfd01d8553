"""FastAPI dependencies shared by the routers: the server facade, its services and common query parameters.

All ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, which cost every request a thread
hop (a GIL hand-off and an extra event-loop wake-up) for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from lwm2m_server.server import LwM2MServer
from lwm2m_server.services import Services


async def get_server(request: Request) -> LwM2MServer:
    """The :class:`LwM2MServer` this app was created for (``create_app(server)``)."""
    server: Any = request.app.state.server
    return server  # type: ignore[no-any-return]


ServerDep = Annotated[LwM2MServer, Depends(get_server)]


async def get_services(request: Request) -> Services:
    """The :class:`Services` this app was created with (``create_app(server, services=...)``). Routes check for
    an absent OTA/rollout service themselves (503), after FastAPI has validated the request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_actor(request: Request) -> str:
    """Who is calling, for the audit log: ``token:<name>`` (set by the auth guard), else ``rest``."""
    principal: Any = getattr(request.state, "principal", None)
    return str(principal.actor) if principal is not None else "rest"


async def _actor(request: Request) -> str:
    return get_actor(request)


ActorDep = Annotated[str, Depends(_actor)]
