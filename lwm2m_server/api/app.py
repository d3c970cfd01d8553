"""``create_app(server, tokens=...)``: the HTTP API of one :class:`LwM2MServer`.

Routers are plain modules with a ``router`` (and optionally ``setup(app, server)`` for state,
middleware or metrics collectors). Adding a surface is one line in :data:`ROUTERS`: the module and the
access it needs. Order matters: the device-operation router ends with the catch-all
``/api/devices/{ep}/{path:path}``, so any router with more specific ``/api/devices/...`` routes must come
before it.

Access (see :mod:`lwm2m_server.api.auth`), the one place roles are assigned:

=====================  =========================  ======================================================
router                 access                     meaning
=====================  =========================  ======================================================
health                 OPEN                       ``/healthz`` needs no token (load balancers)
web.pages              OPEN                       dashboard page shells + /static (the data comes from /api)
metrics                METRICS                    any valid token; none when ``[api] metrics_open``
events                 EVENTS                     viewer; also ``?access_token=`` (EventSource)
devices, ota, models,  BY_METHOD                  GET/HEAD: viewer; POST/PUT/DELETE...: operator
rollouts, audit, fleet,
mgmt, objects, cluster,
operations
tokens, credentials,   ADMIN                      admin for every method
bootstrap
=====================  =========================  ======================================================

Routers from other branches get one line each, e.g. ``("lwm2m_server.api.credentials", ADMIN)``,
``("lwm2m_server.api.bootstrap", ADMIN)``.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from lwm2m_server import __version__
from lwm2m_server.api import forwarding
from lwm2m_server.api.auth import (
    ADMIN,
    AUTH_RESPONSES,
    BY_METHOD,
    EVENTS,
    METRICS,
    OPEN,
    Access,
    Authenticator,
    guard,
    query_token_param,
)
from lwm2m_server.api.errors import install_error_handlers
from lwm2m_server.api.events import DEFAULT_KEEPALIVE_S, close_event_streams
from lwm2m_server.api.observations import cancel_all
from lwm2m_server.auth.refusals import RefusalAudit
from lwm2m_server.auth.tokens import TokenService
from lwm2m_server.services import Services
from lwm2m_server.store.audit import AuditLog

if TYPE_CHECKING:
    from lwm2m_server.ota.service import OtaService
    from lwm2m_server.server import LwM2MServer

ROUTERS: tuple[tuple[str, Access], ...] = (
    ("lwm2m_server.api.health", OPEN),
    ("lwm2m_server.api.metrics", METRICS),
    ("lwm2m_server.api.events", EVENTS),
    ("lwm2m_server.api.devices", BY_METHOD),
    ("lwm2m_server.api.data", BY_METHOD),
    ("lwm2m_server.api.composite", BY_METHOD),
    # more specific /api/devices/... routers (OTA, plans) go here, before "operations"
    ("lwm2m_server.api.ota", BY_METHOD),
    ("lwm2m_server.api.models", BY_METHOD),
    ("lwm2m_server.api.rollouts", BY_METHOD),
    ("lwm2m_server.api.audit", BY_METHOD),  # reads: the dashboard's audit views work for viewers
    ("lwm2m_server.api.tokens", ADMIN),
    ("lwm2m_server.api.credentials", ADMIN),
    ("lwm2m_server.api.bootstrap", ADMIN),
    ("lwm2m_server.api.fleet_metrics", BY_METHOD),
    ("lwm2m_server.api.management", BY_METHOD),
    ("lwm2m_server.api.objects", BY_METHOD),
    ("lwm2m_server.api.cluster", BY_METHOD),  # GET only: viewer
    ("lwm2m_server.web.pages", OPEN),  # the dashboard's page shells and /static: no fleet data, no /api routes
    ("lwm2m_server.api.operations", BY_METHOD),
)


def create_app(
    server: LwM2MServer,
    *,
    services: Services | None = None,
    tokens: TokenService | None = None,
    audit: AuditLog | None = None,
    ota: OtaService | None = None,
    sse_keepalive_s: float = DEFAULT_KEEPALIVE_S,
    extra_routers: Sequence[tuple[str, Access]] = (),
) -> FastAPI:
    """Build the FastAPI app; ``extra_routers`` are ``(module, access)`` included before the catch-all operations.

    ``services``: what the routes use (the Application hands its own in); without it they are built over the
    server's store from ``tokens``/``audit``/``ota`` (routes of a service not given answer 503).
    """
    api_settings = server.settings.api
    if services is None:
        services = Services.for_server(server, tokens=tokens, audit=audit, ota=ota)
    audit_log = services.audit
    token_service = services.tokens
    refusals = RefusalAudit(audit_log, window_s=api_settings.refusal_window_s,
                            max_keys=api_settings.refusal_max_keys)
    auth = Authenticator(token_service, refusals, query_token=api_settings.query_token)

    def begin_shutdown() -> None:
        app.state.closing.set()
        close_event_streams(app)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await token_service.open()
        yield
        begin_shutdown()
        await cancel_all(app)
        await refusals.flush()

    # fastapi-offline serves Swagger UI and ReDoc from files inside the installed package: /docs and /redoc
    # work with no internet (FastAPI's own pages load their JS/CSS from a CDN).
    app = FastAPIOffline(
        title="TinyMLaaS",
        version=__version__,
        description="LwM2M device management, per-device model compilation and OTA rollouts. Every route but "
        "/healthz needs `Authorization: Bearer <token>`; roles viewer < operator < admin.",
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.services = services
    app.state.closing = asyncio.Event()
    app.state.event_streams = set()
    app.state.observations = {}
    app.state.sse_keepalive_s = sse_keepalive_s
    app.state.shutdown_hooks = [begin_shutdown]  # called by ApiRunner.stop() before uvicorn drains connections
    app.state.tokens = token_service
    app.state.audit_log = audit_log
    app.state.refusals = refusals
    install_error_handlers(app)
    forwarding.install(app)
    routers = list(ROUTERS)
    routers[-1:-1] = list(extra_routers)
    for name, access in routers:
        module: Any = importlib.import_module(name)
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app, server)
        if access == OPEN or (access.may_open and api_settings.metrics_open):
            app.include_router(module.router)
            continue
        dependencies = [Depends(guard(access, auth))]
        if access.query_token and api_settings.query_token:
            dependencies.append(Depends(query_token_param))
        dependencies.append(Depends(forwarding.forward_if_elsewhere))  # after the guard: the caller is known
        app.include_router(module.router, dependencies=dependencies, responses=AUTH_RESPONSES)
    return app
