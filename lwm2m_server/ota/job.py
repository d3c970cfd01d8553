"""One device's OTA update, driven end to end: reset Object 5, deliver, follow State/Result, Execute, confirm.

The sequence lives here; following the device (notifications, re-reads, silence) is :mod:`lwm2m_server.ota.follow`,
the requests are :mod:`lwm2m_server.ota.calls`, and every Object 5 decision (execute now, installed, failed, retry
or not) is the sans-IO :class:`~lwm2m_server.protocol.fwtracker.FirmwareUpdateTracker` the job drives: ``begin``
when delivery starts, ``executed`` after Update, ``reset`` after a reset, ``resume`` after a server restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.config import OtaSettings
from lwm2m_server.events import Event, EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.ota.calls import DeviceCalls
from lwm2m_server.ota.follow import FOLLOW_EVENTS, Follower
from lwm2m_server.ota.job_state import Cause, JobFailed, JobLost, JobPhase, JobRetry, JobState, failure_cause
from lwm2m_server.ota.method import MethodError, choose_method
from lwm2m_server.ota.object5 import DELIVERY, MODEL, MODEL_HEALTH, MODEL_SHA, fw_int, protocols_of
from lwm2m_server.ota.packages import PackageInfo, PackageStore
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.protocol.fwtracker import FirmwareUpdateTracker, Phase, Step
from lwm2m_server.protocol.fwupdate import FirmwareState, UpdateResult, retry_decision
from lwm2m_server.queue import QueueManager

log = get_logger(__name__)

PROGRESS_EVERY_S = 0.5
__all__ = ["FOLLOW_EVENTS", "JobContext", "UpdateJob"]


@dataclass
class JobContext:
    """What a job needs from the server; the service builds it once."""

    client: Any  # lwm2m_server.coap.device_client.DeviceClient
    events: EventBus
    registry: Any  # lwm2m_server.registry.Registry
    packages: PackageStore
    settings: OtaSettings
    base_uri: Callable[[str], str]  # endpoint -> coap://host:port of this server as the device sees it
    persist: Callable[[JobRecord, JobPhase, JobPhase, str], Awaitable[None]]
    served: Callable[[str, str], tuple[int, int] | None] = lambda sha, ep: None  # pull progress (bytes, total)
    ram_budget: Callable[[str], Awaitable[int | None]] | None = None  # endpoint -> /32001/0/1
    dispatched: bool = False  # True: the service feeds on_event() from one shared subscription
    queue: QueueManager | None = None  # queue mode: a sleeping device is not silent


class UpdateJob:
    def __init__(self, ctx: JobContext, record: JobRecord, package: PackageInfo) -> None:
        self.ctx = ctx
        self.record = record
        self.package = package
        self.state = JobState(phase=record.phase, attempt=record.attempt, cause=record.cause, result=record.result)
        reported = (record.progress.get("fw_state"), record.progress.get("fw_result"))
        self.fw = FirmwareUpdateTracker(reported=reported, now=time.monotonic())
        self.follower = Follower(endpoint=record.endpoint, client=ctx.client, registry=ctx.registry, events=ctx.events,
                                 settings=ctx.settings, tracker=self.fw, on_news=self._fw_news, queue=ctx.queue,
                                 served=lambda: ctx.served(package.sha256, record.endpoint))  # fmt: skip
        self.calls = DeviceCalls(ctx.client, record.endpoint, self.follower)
        self._cancel_requested = False
        self._progress_at = 0.0

    @property
    def endpoint(self) -> str:
        return self.record.endpoint

    def on_event(self, ev: Event) -> None:
        """The service's shared subscription hands this device's events in (see OtaService)."""
        self.follower.on_event(ev)

    # -- bookkeeping -----------------------------------------------------------------------------------------
    async def _move(self, to: JobPhase, note: str = "") -> None:
        before = self.state.phase
        if to == before:
            return
        self.state.move(to, note)
        await self._save(before, note)

    async def _save(self, before: JobPhase, note: str) -> None:
        r = self.record
        r.phase, r.attempt, r.cause, r.result = (self.state.phase, self.state.attempt, self.state.cause,
                                                 self.state.result)  # fmt: skip
        r.progress["fw_state"], r.progress["fw_result"] = self.fw.reported_state, self.fw.reported_result
        r.updated_at = time.time()
        await self.ctx.persist(r, before, r.phase, note)

    def _fw_news(self, state: int | None, result: int | None) -> None:
        self.record.progress["fw_state"], self.record.progress["fw_result"] = state, result
        self.ctx.events.emit("ota.fw_state", self.endpoint, job=self.record.id, state=state, result=result)

    def _progress(self, blocks: int, done: int, total: int) -> None:
        self.follower.alive()
        now = time.monotonic()
        self.record.progress.update(blocks=blocks, bytes=done, total=total)
        if done >= total or now - self._progress_at >= PROGRESS_EVERY_S:  # not one event per block
            self._progress_at = now
            self.ctx.events.emit("ota.progress", self.endpoint, job=self.record.id, blocks=blocks, bytes=done,
                                 total=total)  # fmt: skip

    # -- the sequence ------------------------------------------------------------------------------------------
    async def run(self) -> JobRecord:
        try:
            return await self._run()
        except JobLost:  # raised by persist, even from the failure handlers below: the new owner carries on
            log.info("ota.job_lost", job=self.record.id, endpoint=self.endpoint)
            return self.record

    async def _run(self) -> JobRecord:
        follow = self.follower.follow_events() if not self.ctx.dispatched else asyncio.sleep(0)
        follower = asyncio.create_task(follow)
        poller: asyncio.Task[None] | None = None
        try:
            resume_at = await self._resume_point()
            while not self.state.terminal:
                try:
                    if resume_at is None:
                        await self._prepare_and_deliver()
                    if poller is None:
                        poller = asyncio.create_task(self.follower.poller())
                    await self._finish(resume_at or JobPhase.DOWNLOADING)
                except JobRetry as retry:
                    settings = self.ctx.settings
                    decision = retry_decision(retry.result, self.state.attempt, settings.max_retries,
                                              settings.retry_backoff_s)  # fmt: skip
                    if not decision.retry:
                        raise JobFailed(failure_cause(decision.failure), retry.result, retry.detail) from None
                    self.state.result = retry.result
                    await self._move(JobPhase.RETRY_WAIT, f"{retry.detail}; retry in {decision.delay_s:.1f}s")
                    await asyncio.sleep(decision.delay_s)
                    self.state.attempt += 1
                    resume_at = None
        except JobFailed as failed:
            cause = failed.cause
            update_failed = cause is Cause.UPDATE_RESULT and failed.result == UpdateResult.UPDATE_FAILED
            if update_failed and await self._arena_too_big():
                cause = Cause.NOT_FITTING  # TFLM could not allocate the arena: re-plan, do not retry
            await self._fail(cause, failed.result, failed.detail)
        except asyncio.CancelledError:
            if not self._cancel_requested:
                raise
            await self.calls.reset(cancel=True)
            await self._fail(Cause.CANCELLED, None, "cancelled by operator")
        except JobLost:
            raise
        except Exception as exc:  # a bug or an unexpected device answer must end the job, not hang it
            log.exception("ota.job_crashed", endpoint=self.endpoint)
            await self._fail(Cause.DEVICE_ERROR, None, f"{type(exc).__name__}: {exc}")
        finally:
            follower.cancel()
            if poller is not None:
                poller.cancel()
            await asyncio.gather(follower, *([poller] if poller else []), return_exceptions=True)
        return self.record

    async def _arena_too_big(self) -> bool:
        if self.package.kind != "model" or not self.package.arena_bytes or self.ctx.ram_budget is None:
            return False
        try:
            budget = await self.ctx.ram_budget(self.endpoint)
        except DeviceError:
            return False
        return budget is not None and self.package.arena_bytes > budget

    async def _fail(self, cause: Cause, result: int | None, detail: str) -> None:
        before = self.state.phase
        if self.state.terminal:
            return
        self.record.detail = detail
        self.state.fail(cause, result, detail)
        await self._save(before, detail or cause.value)

    async def _resume_point(self) -> JobPhase | None:
        """After a restart: re-check the device instead of restarting the download blindly."""
        phase = self.state.phase
        if phase in (JobPhase.QUEUED, JobPhase.PREPARING, JobPhase.RETRY_WAIT):
            if phase is not JobPhase.QUEUED:
                await self._move(JobPhase.QUEUED, "resumed")
            return None
        await self._move(JobPhase.QUEUED, f"resumed from {phase}")
        executed = phase in (JobPhase.UPDATING, JobPhase.CONFIRMING)
        self.fw.resume(executed=executed)  # what the device reports now belongs to the interrupted attempt
        try:
            await self.follower.read_fw()
        except DeviceError:
            return None
        if executed:
            return JobPhase.UPDATING
        fetching = self.fw.reported_state in (FirmwareState.DOWNLOADING, FirmwareState.DOWNLOADED)
        if fetching and (phase is JobPhase.DOWNLOADING or self.record.method == "pull"):
            return JobPhase.DOWNLOADING  # still downloading (pull) or already downloaded: keep going
        if self.fw.phase is Phase.FAILED:
            return JobPhase.DOWNLOADING  # the device gave up meanwhile: its result decides (retry, not fitting...)
        return None

    async def _prepare_and_deliver(self) -> None:
        await self._move(JobPhase.PREPARING, f"attempt {self.state.attempt}")
        content = await self.calls.read_fw()
        if self.fw.needs_reset:
            await self.calls.reset(cancel=False)
            content = await self.calls.read_fw()
        try:
            choice = choose_method(
                delivery_method=fw_int(content, DELIVERY),
                protocols=protocols_of(content),
                base_uri=self.ctx.base_uri(self.endpoint),
                sha256_hex=self.package.sha256,
                prefer=self.ctx.settings.prefer,
                requested=self.record.requested_method,  # type: ignore[arg-type]
            )
        except MethodError as exc:
            raise JobFailed(Cause.NO_METHOD, None, str(exc)) from None
        self.record.method = choice.method
        self.fw.begin()  # a previous attempt's result must not be read as this attempt's
        await self._move(JobPhase.DELIVERING, choice.method)
        if choice.uri is not None:
            await self.calls.write_uri(choice.uri)
            return
        data = await self.ctx.packages.read(self.package.sha256)
        if data is None:
            raise JobFailed(Cause.DEVICE_ERROR, None, "package bytes missing from the store")
        await self.calls.push(data, self.ctx.settings.block_size, self._progress)

    async def _finish(self, start: JobPhase) -> None:
        if start is JobPhase.DOWNLOADING:
            await self._move(JobPhase.DOWNLOADING)
            if self.record.method == "push":  # pushed: the device should say Downloaded now; pulling: it will say so
                self.follower.poke()
            step = await self.follower.wait_for(JobPhase.DOWNLOADING)
            if step is Step.EXECUTE:
                await self._move(JobPhase.UPDATING, "execute /5/0/2")
                await self.calls.execute_update()
            else:  # the device updated on its own once downloaded: nothing to execute
                await self._move(JobPhase.UPDATING, "updated without Execute")
        else:
            await self._move(JobPhase.UPDATING, "resumed")
        self.follower.poke()
        # A model is confirmed by what /32002/0 reports, so a device that comes back without a result is checked.
        step = await self.follower.wait_for(JobPhase.UPDATING, verify=self.package.kind == "model")
        await self._move(JobPhase.CONFIRMING, "no Update Result after updating" if step is Step.VERIFY else "")
        await self._confirm()

    async def _confirm(self) -> None:
        if self.package.kind == "firmware":
            await self._move(JobPhase.SUCCEEDED, "Update Result 1")
            return
        content = await self.calls.call(lambda: self.ctx.client.read(self.endpoint, MODEL))
        sha = str(content.get(MODEL.child(MODEL_SHA), "")).lower()
        health = str(content.get(MODEL.child(MODEL_HEALTH), ""))
        self.record.progress.update(model_sha256=sha, health=health)
        if sha != self.package.payload_sha256.lower():
            raise JobFailed(Cause.NOT_CONFIRMED, 1, f"/32002/0/2 reports {sha[:16] or 'nothing'}, expected "
                            f"{self.package.payload_sha256[:16]}")  # fmt: skip
        if health != "ok":
            raise JobFailed(Cause.NOT_CONFIRMED, 1, f"/32002/0/12 health is {health!r}")
        await self._move(JobPhase.SUCCEEDED, f"confirmed sha256 {sha[:16]} health ok")

    def cancel(self, task: asyncio.Task[Any]) -> None:
        self._cancel_requested = True
        task.cancel()
