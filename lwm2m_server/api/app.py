"""``create_app(server)``: the HTTP API of one :class:`LwM2MServer`.

Routers are plain modules with a ``router`` (and optionally ``setup(app, server)`` for state,
middleware or metrics collectors). Adding a surface is one line in :data:`ROUTER_MODULES`. Order
matters: the device-operation router ends with the catch-all ``/api/devices/{ep}/{path:path}``, so any
router with more specific ``/api/devices/...`` routes must come before it.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from lwm2m_server import __version__
from lwm2m_server.api.errors import install_error_handlers
from lwm2m_server.api.events import DEFAULT_KEEPALIVE_S, close_event_streams
from lwm2m_server.api.observations import cancel_all

if TYPE_CHECKING:
    from lwm2m_server.server import LwM2MServer

ROUTER_MODULES: tuple[str, ...] = (
    "lwm2m_server.api.health",
    "lwm2m_server.api.metrics",
    "lwm2m_server.api.events",
    "lwm2m_server.api.devices",
    "lwm2m_server.api.data",
    "lwm2m_server.api.composite",
    # more specific /api/devices/... routers (OTA, plans) go here, before "operations"
    "lwm2m_server.api.ota",
    "lwm2m_server.api.models",
    "lwm2m_server.api.rollouts",
    "lwm2m_server.api.audit",
    "lwm2m_server.api.fleet_metrics",
    "lwm2m_server.api.management",
    "lwm2m_server.api.operations",
)


def create_app(
    server: LwM2MServer,
    *,
    sse_keepalive_s: float = DEFAULT_KEEPALIVE_S,
    extra_routers: Sequence[str] = (),
) -> FastAPI:
    """Build the FastAPI app; ``extra_routers`` are module names included before the catch-all operations."""

    def begin_shutdown() -> None:
        app.state.closing.set()
        close_event_streams(app)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        begin_shutdown()
        await cancel_all(app)

    app = FastAPI(
        title="TinyMLaaS",
        version=__version__,
        description="LwM2M device management, per-device model compilation and OTA rollouts.",
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.closing = asyncio.Event()
    app.state.event_streams = set()
    app.state.observations = {}
    app.state.sse_keepalive_s = sse_keepalive_s
    app.state.shutdown_hooks = [begin_shutdown]  # called by ApiRunner.stop() before uvicorn drains connections
    install_error_handlers(app)
    modules = list(ROUTER_MODULES)
    modules[-1:-1] = list(extra_routers)
    for name in modules:
        module: Any = importlib.import_module(name)
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app, server)
        app.include_router(module.router)
    return app
