"""Prometheus series for OTA jobs, compile cache and rollouts, registered through the metrics extension points.

The numbers live in the store (jobs and rollouts survive restarts), so a refresher reads them with three
``GROUP BY`` queries before each scrape and the collector yields that snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lwm2m_server.api.metrics import get_metrics
from lwm2m_server.logging import get_logger

log = get_logger(__name__)

router = APIRouter()  # no routes: this module only adds metrics


class FleetCollector(Collector):
    def __init__(self, server: Any) -> None:
        self.server = server
        self.ota_phases: list[tuple[str, int]] = []
        self.rollouts: list[tuple[str, int]] = []
        self.devices: list[tuple[str, str, int]] = []

    async def refresh(self) -> None:
        store = self.server.store
        try:
            self.ota_phases = [(r["phase"], r["n"]) for r in await store.fetchall(
                "SELECT phase, COUNT(*) AS n FROM ota_jobs GROUP BY phase")]
        except Exception as exc:  # table not created (no OTA service): no series
            log.debug("metrics.ota_unavailable", error=repr(exc))
            self.ota_phases = []
        try:
            self.rollouts = [(r["state"], r["n"]) for r in await store.fetchall(
                "SELECT state, COUNT(*) AS n FROM rollouts GROUP BY state")]
            self.devices = [(r["rollout_id"], r["state"], r["n"]) for r in await store.fetchall(
                "SELECT rollout_id, state, COUNT(*) AS n FROM rollout_devices GROUP BY rollout_id, state")]
        except Exception as exc:
            log.debug("metrics.rollouts_unavailable", error=repr(exc))
            self.rollouts, self.devices = [], []

    def _compile_runner(self) -> Any:
        service = getattr(getattr(self.server, "ota", None), "compile_service", None)
        return getattr(service, "runner", None)

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
    collector = FleetCollector(server)
    metrics = get_metrics(app)
    metrics.add_collector(collector)
    metrics.add_refresher(collector.refresh)
