"""``OtaService``: owns the package store, the ``/fw`` resource and every device's update job.

One active job per device. Every job state change is committed to the Store (``ota_jobs`` + ``ota_job_history``)
and published as an ``ota.<phase>`` event before the job moves on, so :meth:`resume_all` after a restart picks
each unfinished job up where the store says it was (the job itself re-checks the device before continuing).
"""

from __future__ import annotations

import asyncio
from typing import Any

from lwm2m_server.coap.firmware_resource import FirmwareResource
from lwm2m_server.compiling import Compiling
from lwm2m_server.events import Subscription
from lwm2m_server.logging import get_logger
from lwm2m_server.models_catalog import ModelCatalog
from lwm2m_server.ota import builds
from lwm2m_server.ota.job import FOLLOW_EVENTS, JobContext, UpdateJob
from lwm2m_server.ota.job_state import ACTIVE, JobLost, JobPhase
from lwm2m_server.ota.method import base_coap_uri
from lwm2m_server.ota.ownership import JobOwnership
from lwm2m_server.ota.packages import PackageInfo, PackageStore
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.protocol.paths import LwM2MPath

log = get_logger(__name__)


class OtaError(ValueError):
    """A request the service refuses (unknown package, a job already running, unknown device...)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class OtaService:
    """Attach before ``server.start()`` (adds ``/fw``), then ``await start()`` once the server runs."""

    def __init__(
        self,
        server: Any,
        *,
        max_active: int | None = None,
        compiling: Compiling | None = None,
        catalog: ModelCatalog | None = None,
        ownership: JobOwnership | None = None,
    ) -> None:
        """``compiling``/``catalog``: shared with the rollouts and the API (default: this service's own).
        ``ownership``: several nodes share the store (see :mod:`lwm2m_server.ota.ownership`); None: one node."""
        self.ownership = ownership
        self._adoptions: set[asyncio.Task[None]] = set()
        self.server = server
        self.settings = server.settings
        self.packages = PackageStore(self.settings.server.data_dir, server.store.packages)
        self.jobs_repo = server.store.ota_jobs
        self.fw_resource = FirmwareResource(self.packages.read)
        server.add_resource(("fw",), self.fw_resource)
        self._jobs: dict[str, tuple[UpdateJob, asyncio.Task[JobRecord]]] = {}
        self._by_endpoint: dict[str, str] = {}
        self._limit = asyncio.Semaphore(max_active) if max_active else None
        self._started = False
        self._events: Subscription | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self.compiling = compiling if compiling is not None else Compiling(self.settings)
        self.catalog = catalog if catalog is not None else ModelCatalog(self.settings.server.data_dir)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self, *, resume: bool = True) -> None:
        await self.packages.open()
        # One subscription for all jobs, dispatched by endpoint: a per-job subscription would make every
        # event cost O(running jobs) in the bus.
        self._events = self.server.events.subscribe(types=FOLLOW_EVENTS, maxsize=100_000)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="ota-events")
        self._started = True
        if resume:
            await self.resume_all()

    async def _dispatch(self) -> None:
        assert self._events is not None
        async for ev in self._events:
            job_id = self._by_endpoint.get(ev.endpoint or "")
            entry = self._jobs.get(job_id) if job_id else None
            if entry is not None:
                entry[0].on_event(ev)
            elif ev.type == "registered" and ev.endpoint and self.ownership is not None:
                task = asyncio.create_task(self._adopt(ev.endpoint), name=f"ota-adopt-{ev.endpoint}")
                self._adoptions.add(task)
                task.add_done_callback(self._adoptions.discard)

    async def _adopt(self, endpoint: str) -> None:
        """The device registered here: resume its active job if another node owned it and is gone."""
        assert self.ownership is not None
        try:
            for record in await self.jobs_repo.for_endpoint(endpoint, limit=5):
                if record.phase not in ACTIVE:
                    continue
                package = await self.packages.get(record.package_sha256)
                if endpoint in self._by_endpoint or package is None or not await self.ownership.adopt(record):
                    return
                if endpoint not in self._by_endpoint and self._started:
                    self._launch(record, package)
                return
        except Exception as exc:  # a store hiccup must not kill the dispatcher; the next registration retries
            log.warning("ota.adopt_failed", endpoint=endpoint, error=repr(exc))

    async def stop(self) -> None:
        """Stop running jobs without touching their stored state: a later start resumes them."""
        if self._events is not None:
            self._events.close()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        self._events, self._dispatcher = None, None
        tasks = [t for _, t in self._jobs.values()] + list(self._adoptions)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._jobs.clear()
        self._by_endpoint.clear()

    async def resume_all(self) -> list[str]:
        resumed = []
        for record in await self.jobs_repo.in_phases(p.value for p in ACTIVE):
            if record.endpoint in self._by_endpoint:
                continue
            package = await self.packages.get(record.package_sha256)
            if package is None:
                continue
            if self.ownership is not None and not await self.ownership.claim_for_resume(record):
                continue  # another node's job: it resumes it, or a node adopts it when the device registers
            log.info("ota.job_resumed", job=record.id, endpoint=record.endpoint, phase=record.phase.value)
            self._launch(record, package)
            resumed.append(record.id)
        return resumed

    # -- packages ------------------------------------------------------------------------------------------------
    async def add_package(self, data: bytes, kind: str, *, name: str = "", version: str = "") -> PackageInfo:
        """Store an uploaded package; a model package must verify with this server's signing key."""
        if kind not in ("model", "firmware"):
            raise OtaError(f"kind must be model or firmware, not {kind!r}")
        public_key = (
            await asyncio.to_thread(builds.server_public_key, self.settings.secrets_dir)
            if kind == "model"
            else None
        )
        return await self.packages.add(data, kind, name=name, version=version, public_key=public_key)  # type: ignore[arg-type]

    async def build_model_package(self, endpoint: str, model: str) -> PackageInfo:
        """Compile ``model`` for the device's class (profile -> Target), sign it and store the package."""
        try:
            return await builds.build_for_device(self.server, self.compiling.service, self.catalog, self.packages,
                                                 endpoint, model)
        except builds.NotFitting as exc:
            raise OtaError(str(exc), 422) from exc
        except builds.BuildError as exc:
            raise OtaError(str(exc), exc.status) from exc

    # -- jobs ----------------------------------------------------------------------------------------------------
    async def start_update(
        self,
        endpoint: str,
        package_sha: str,
        *,
        method: str | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
    ) -> str:
        """Start delivering ``package_sha`` to ``endpoint``; returns the job id (per-job limits are optional)."""
        if not self._started:
            raise OtaError("OTA service is not started", 503)
        if method not in (None, "push", "pull"):
            raise OtaError(f"method must be push or pull, not {method!r}")
        package = await self.packages.get(package_sha)
        if package is None:
            raise OtaError(f"unknown package {package_sha}", 404)
        if self.server.registry.get(endpoint) is None:
            raise OtaError(f"device {endpoint!r} is not registered", 404)
        if endpoint in self._by_endpoint:
            raise OtaError(f"device {endpoint!r} already has an update running ({self._by_endpoint[endpoint]})", 409)
        options = {k: v for k, v in (("timeout_s", timeout_s), ("max_retries", max_retries)) if v is not None}
        record = JobRecord(endpoint=endpoint, package_sha256=package.sha256, kind=package.kind,
                           requested_method=method, options=options,
                           node_id=self.ownership.node_id if self.ownership is not None else None)  # fmt: skip
        await self._persist(record, JobPhase.QUEUED, JobPhase.QUEUED, "created")
        self._launch(record, package)
        return record.id

    def _launch(self, record: JobRecord, package: PackageInfo) -> None:
        job = UpdateJob(self._context(record), record, package)
        task = asyncio.create_task(self._run(job), name=f"ota-{record.endpoint}")
        self._jobs[record.id] = (job, task)
        self._by_endpoint[record.endpoint] = record.id

    async def _run(self, job: UpdateJob) -> JobRecord:
        try:
            if self._limit is None:
                return await job.run()
            async with self._limit:
                return await job.run()
        finally:
            self._jobs.pop(job.record.id, None)
            if self._by_endpoint.get(job.endpoint) == job.record.id:
                del self._by_endpoint[job.endpoint]

    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        entry = self._jobs.get(job_id)
        if entry is not None:
            return await asyncio.wait_for(asyncio.shield(entry[1]), timeout)
        record = await self.get_job(job_id)
        if record is None:
            raise OtaError(f"unknown job {job_id}", 404)
        return record

    async def cancel(self, job_id: str) -> bool:
        entry = self._jobs.get(job_id)
        if entry is None:
            return False
        job, task = entry
        job.cancel(task)
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def get_job(self, job_id: str) -> JobRecord | None:
        entry = self._jobs.get(job_id)
        if entry is not None:
            return entry[0].record
        return await self.jobs_repo.get(job_id)

    async def jobs_for(self, endpoint: str, limit: int = 20) -> list[JobRecord]:
        live = {rid: job.record for rid, (job, _) in self._jobs.items()}
        return [live.get(r.id) or r for r in await self.jobs_repo.for_endpoint(endpoint, limit)]

    async def history(self, job_id: str) -> list[dict[str, Any]]:
        return await self.jobs_repo.history(job_id)

    async def status(self, endpoint: str) -> dict[str, Any]:
        """The device's latest job (with live progress and history) and its earlier jobs."""
        jobs = await self.jobs_for(endpoint)
        if not jobs:
            return {"endpoint": endpoint, "job": None, "history": [], "previous": []}
        latest = jobs[0]
        data = latest.to_json()
        served = self._served(latest.package_sha256, endpoint)
        if latest.method == "pull" and served is not None:
            data["progress"] = {**data["progress"], "bytes": served[0], "total": served[1]}
        return {
            "endpoint": endpoint,
            "job": data,
            "history": await self.history(latest.id),
            "previous": [j.to_json() for j in jobs[1:]],
        }

    # -- wiring -----------------------------------------------------------------------------------------------
    async def _persist(self, record: JobRecord, before: JobPhase, after: JobPhase, note: str) -> None:
        history = (before.value, after.value, note) if before != after or note == "created" else None
        await self.jobs_repo.save(record, history)
        if self.ownership is not None and not await self.ownership.still_mine(record):
            raise JobLost(record.id)  # adopted by another node: this write was not applied, the job stops here
        self.server.events.emit(
            f"ota.{after.value}", record.endpoint, job=record.id, package=record.package_sha256,
            attempt=record.attempt, method=record.method, cause=record.cause.value if record.cause else None,
            result=record.result, note=note,
        )  # fmt: skip
        log.info("ota.job_state", job=record.id, endpoint=record.endpoint, phase=after.value, note=note)

    def _base_uri(self, endpoint: str) -> str:
        reg = self.server.registry.get(endpoint)
        s, c = self.settings.server, self.settings.coap
        if reg is not None and reg.security != "none":  # a DTLS device pulls over coaps, on its own session
            return base_coap_uri(c.public_coaps_uri, c.coaps_host or s.coap_host, self.server.coaps_port, reg.host,
                                 scheme="coaps")
        return base_coap_uri(s.public_coap_uri, s.coap_host, self.server.coap_port, reg.host if reg else None)

    def _served(self, sha: str, endpoint: str) -> tuple[int, int] | None:
        stats = self.fw_resource.stats.get(sha)
        reg = self.server.registry.get(endpoint)
        if stats is None or reg is None:
            return None
        exact = stats.last_block_by_remote.get(f"{reg.host}:{reg.port}")
        if exact is not None:  # the device pulls from the socket it registered from (the usual case)
            return exact
        best = None
        for remote, (done, total) in stats.last_block_by_remote.items():
            if remote.rsplit(":", 1)[0].strip("[]") == reg.host and (best is None or done > best[0]):
                best = (done, total)
        return best

    async def _ram_budget(self, endpoint: str) -> int | None:
        content = await self.server.client.read(endpoint, LwM2MPath(32001, 0, 1))
        value = content.get(LwM2MPath(32001, 0, 1))
        return int(value) if isinstance(value, int) else None

    def _context(self, record: JobRecord) -> JobContext:
        ota = self.settings.ota
        if record.options:
            ota = ota.model_copy(
                update={k: record.options[k] for k in ("timeout_s", "max_retries") if k in record.options}
            )
        return JobContext(
            client=self.server.client,
            events=self.server.events,
            registry=self.server.registry,
            packages=self.packages,
            settings=ota,
            base_uri=self._base_uri,
            persist=self._persist,
            served=self._served,
            ram_budget=self._ram_budget,
            dispatched=self._events is not None,
            queue=self.server.client.queue,
        )
