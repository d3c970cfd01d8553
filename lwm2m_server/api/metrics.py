"""``GET /metrics``: Prometheus text exposition from a per-app ``CollectorRegistry``.

Per-app (not the global default registry) so several servers in one process (tests, ``demo``) never
share or duplicate series. Device gauges are computed at scrape time from the registry, event counts
come from a lossless bus sink, HTTP request counts from a small ASGI middleware. Other areas add their
own series with ``get_metrics(app).add_collector(collector)`` (any prometheus_client ``Collector``)
or by creating metrics on ``get_metrics(app).registry``; ``add_refresher(async fn)`` runs before each scrape
(for collectors whose numbers come from the store).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lwm2m_server.api import access

router = APIRouter(tags=["metrics"])


class _DeviceCollector(Collector):
    """Device gauges and CoAP counters, read from the live server at scrape time."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def collect(self) -> Iterable[Metric]:
        regs = access.registrations(self._server)
        sleeping = sum(1 for reg in regs if access.is_sleeping(self._server, reg))
        yield GaugeMetricFamily("tinymlaas_devices_registered", "Devices with a live registration", value=len(regs))
        yield GaugeMetricFamily("tinymlaas_devices_online", "Registered devices reachable now (not sleeping)",
                                value=len(regs) - sleeping)
        yield GaugeMetricFamily("tinymlaas_devices_sleeping", "Registered queue-mode devices that are asleep",
                                value=sleeping)
        by_version = GaugeMetricFamily("tinymlaas_devices_by_lwm2m_version", "Registered devices per LwM2M version",
                                       labels=["version"])
        counts: dict[str, int] = {}
        for reg in regs:
            counts[reg.lwm2m_version] = counts.get(reg.lwm2m_version, 0) + 1
        for version, n in sorted(counts.items()):
            by_version.add_metric([version], n)
        yield by_version
        rd = CounterMetricFamily("tinymlaas_rd_requests", "Registration-interface (/rd) requests by outcome",
                                 labels=["outcome"])
        for outcome, n in sorted(access.rd_request_counts(self._server).items()):
            rd.add_metric([outcome], n)
        yield rd
        coap = CounterMetricFamily("tinymlaas_coap_requests",
                                   "CoAP requests by direction (out: server to device, in: /rd), method and "
                                   "response code (or timeout/network)", labels=["direction", "method", "code"])
        for (direction, method, code), n in sorted(access.coap_request_counts(self._server).items()):
            coap.add_metric([direction, method, code], n)
        yield coap
        counts, pending, sessions = access.dtls_stats(self._server)
        dtls = CounterMetricFamily(
            "tinymlaas_dtls_events", "coaps listener: handshake_ok/failed/expired/dropped (cap), refused_datagram "
            "(not a ClientHello from an unknown peer), session_evicted", labels=["outcome"])
        for outcome, n in sorted(counts.items()):
            dtls.add_metric([outcome], n)
        yield dtls
        yield GaugeMetricFamily("tinymlaas_dtls_handshakes_pending", "DTLS handshakes in progress", value=pending)
        yield GaugeMetricFamily("tinymlaas_dtls_sessions", "Established DTLS sessions", value=sessions)


class ApiMetrics:
    """The app's metrics registry plus the built-in series."""

    def __init__(self, server: Any) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("tinymlaas_events", "Events published on the server's event bus, by type",
                              ["type"], registry=self.registry)
        self.http_requests = Counter("tinymlaas_http_requests", "HTTP API requests, by method, route and status",
                                     ["method", "route", "status"], registry=self.registry)
        self.registry.register(_DeviceCollector(server))
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        server.events.add_sink(self._count_event)

    def _count_event(self, event: Any) -> None:
        self.events.labels(str(event.type)).inc()

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def add_refresher(self, refresh: Callable[[], Awaitable[None]]) -> None:
        self.refreshers.append(refresh)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def get_metrics(app: FastAPI) -> ApiMetrics:
    metrics: ApiMetrics = app.state.metrics
    return metrics


class HttpMetricsMiddleware:
    """Counts requests by route template (bounded label set), not by raw URL."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self.metrics.http_requests.labels(scope.get("method", ""), template, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


def setup(app: FastAPI, server: Any) -> None:
    """Create the app's metrics (called by ``create_app``)."""
    app.state.metrics = ApiMetrics(server)
    app.add_middleware(HttpMetricsMiddleware, metrics=app.state.metrics)


@router.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    for refresh in get_metrics(request.app).refreshers:
        await refresh()
    return Response(get_metrics(request.app).render(), media_type=CONTENT_TYPE_LATEST)
