"""Prometheus series for OTA jobs, compile cache and rollouts, registered through the metrics extension points.

The numbers live in the store (jobs and rollouts survive restarts), so a refresher reads them with three
counts (the store's ``stats`` repository) before each scrape and the collector yields that snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lwm2m_server.api.metrics import get_metrics
from lwm2m_server.compiling import Compiling
from lwm2m_server.logging import get_logger
from lwm2m_server.services import Services
from lwm2m_server.store.repositories import FleetStats

log = get_logger(__name__)

router = APIRouter()  # no routes: this module only adds metrics


class FleetCollector(Collector):
    def __init__(self, stats: FleetStats, compiling: Compiling) -> None:
        self.stats = stats
        self.compiling = compiling
        self.ota_phases: list[tuple[str, int]] = []
        self.rollouts: list[tuple[str, int]] = []
        self.devices: list[tuple[str, str, int]] = []

    async def refresh(self) -> None:
        stats = self.stats
        try:
            self.ota_phases = await stats.ota_phases()
            self.rollouts = await stats.rollout_states()
            self.devices = await stats.rollout_devices()
        except Exception as exc:  # the store failing a read must not fail the scrape: no fleet series this time
            log.warning("metrics.fleet_unavailable", error=repr(exc))
            self.ota_phases, self.rollouts, self.devices = [], [], []

    def _compile_runner(self) -> Any:
        return getattr(self.compiling.started, "runner", None)  # no compile service yet: zero counts

    def collect(self) -> Iterable[Metric]:
        jobs = GaugeMetricFamily("tinymlaas_ota_jobs", "OTA jobs in the store, by phase", labels=["phase"])
        for phase, n in sorted(self.ota_phases):
            jobs.add_metric([phase], n)
        yield jobs
        runner = self._compile_runner()
        hits = CounterMetricFamily("tinymlaas_compile_cache_hits", "Compiles served from the on-disk compile cache")
        hits.add_metric([], int(getattr(runner, "cache_hits", 0)))
        yield hits
        misses = CounterMetricFamily("tinymlaas_compile_cache_misses",
                                     "Compile-cache misses (backend compiles actually run)")
        misses.add_metric([], int(getattr(runner, "compiles", 0)))
        yield misses
        rollouts = GaugeMetricFamily("tinymlaas_rollouts", "Rollouts by state", labels=["state"])
        for state, n in sorted(self.rollouts):
            rollouts.add_metric([state], n)
        yield rollouts
        devices = GaugeMetricFamily("tinymlaas_rollout_devices", "Devices of each rollout, by device state",
                                    labels=["rollout", "state"])
        for rollout_id, state, n in sorted(self.devices):
            devices.add_metric([rollout_id, state], n)
        yield devices


def setup(app: FastAPI, server: Any) -> None:
    services: Services = app.state.services
    collector = FleetCollector(server.store.stats, services.compiling)
    metrics = get_metrics(app)
    metrics.add_collector(collector)
    metrics.add_refresher(collector.refresh)
