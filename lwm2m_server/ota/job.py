"""One device's OTA update, driven end to end: reset Object 5, deliver, follow State/Result, Execute, confirm.

State is followed three ways, because notifications get lost and devices reboot: the /5/0/3 and /5/0/5
observations the server sets up on every registration (``notification`` events), a re-read of /5/0 every
``poll_interval_s`` (at most one outstanding, so a sleeping queue-mode device never gets a pile of reads), and an
immediate re-read when the device (re-)registers or wakes up. Every decision comes from the pure
:mod:`lwm2m_server.ota.job_state`; this module only does the I/O and the waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lwm2m_server.coap.errors import DeviceError, DeviceNotRegistered, DeviceTimeout
from lwm2m_server.config import OtaSettings
from lwm2m_server.events import Event, EventBus
from lwm2m_server.logging import get_logger
from lwm2m_server.ota.job_state import Cause, JobPhase, JobState, failure_class, interpret, on_failure
from lwm2m_server.ota.method import MethodError, choose_method
from lwm2m_server.ota.object5 import (
    DELIVERY,
    FW,
    MODEL,
    MODEL_HEALTH,
    MODEL_SHA,
    RESULT,
    STATE,
    fw_int,
    protocols_of,
    values_from_notification,
)
from lwm2m_server.ota.packages import PackageInfo, PackageStore
from lwm2m_server.ota.push import BlockReply, PushError, push_package
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.protocol.fwupdate import FirmwareState, UpdateResult
from lwm2m_server.protocol.paths import LwM2MPath

log = get_logger(__name__)

BLOCK_TRIES = 4
PROGRESS_EVERY_S = 0.5
FOLLOW_EVENTS = frozenset({"notification", "registered", "updated", "awake"})


class _Failed(Exception):
    def __init__(self, cause: Cause, result: int | None = None, detail: str = "") -> None:
        super().__init__(detail or cause.value)
        self.cause, self.result, self.detail = cause, result, detail


class _Retry(Exception):
    """A retryable failure (Update Result 4/5, a lost push): back off and start the attempt again."""

    def __init__(self, result: int, detail: str) -> None:
        super().__init__(detail)
        self.result, self.detail = result, detail


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


class UpdateJob:
    def __init__(self, ctx: JobContext, record: JobRecord, package: PackageInfo) -> None:
        self.ctx = ctx
        self.record = record
        self.package = package
        self.state = JobState(phase=record.phase, attempt=record.attempt, cause=record.cause, result=record.result)
        self.fw_state: int | None = record.progress.get("fw_state")
        self.fw_result: int | None = record.progress.get("fw_result")
        self._changed = asyncio.Event()
        self._alive_at = time.monotonic()
        self._cancel_requested = False
        self._poke = asyncio.Event()
        self._progress_at = 0.0
        self._served_bytes = -1
        self._fw_available = True

    @property
    def endpoint(self) -> str:
        return self.record.endpoint

    # -- bookkeeping -----------------------------------------------------------------------------------------
    async def _move(self, to: JobPhase, note: str = "") -> None:
        before = self.state.phase
        if to == before:
            return
        self.state.move(to, note)
        await self._save(before, note)

    async def _save(self, before: JobPhase, note: str) -> None:
        r = self.record
        r.phase, r.attempt, r.cause, r.result = (
            self.state.phase,
            self.state.attempt,
            self.state.cause,
            self.state.result,
        )
        r.progress["fw_state"], r.progress["fw_result"] = self.fw_state, self.fw_result
        r.updated_at = time.time()
        await self.ctx.persist(r, before, r.phase, note)

    def _progress(self, blocks: int, done: int, total: int) -> None:
        now = time.monotonic()
        self._alive_at = now
        self.record.progress.update(blocks=blocks, bytes=done, total=total)
        if done >= total or now - self._progress_at >= PROGRESS_EVERY_S:  # not one event per block
            self._progress_at = now
            self.ctx.events.emit("ota.progress", self.endpoint, job=self.record.id, blocks=blocks, bytes=done,
                                 total=total)  # fmt: skip

    # -- device I/O --------------------------------------------------------------------------------------------
    async def _read_fw(self) -> dict[LwM2MPath, Any]:
        content: dict[LwM2MPath, Any] = await self.ctx.client.read(self.endpoint, FW)
        st, res = fw_int(content, STATE), fw_int(content, RESULT)
        self._observe(st, res)
        return content

    def _observe(self, state: int | None, result: int | None) -> None:
        changed = False
        if state is not None and state != self.fw_state:
            self.fw_state, changed = state, True
        if result is not None and result != self.fw_result:
            self.fw_result, changed = result, True
        if changed:  # progress, not mere liveness: a device stuck in one state still times out
            self._alive_at = time.monotonic()
            self.record.progress["fw_state"], self.record.progress["fw_result"] = self.fw_state, self.fw_result
            self.ctx.events.emit("ota.fw_state", self.endpoint, job=self.record.id, state=self.fw_state,
                                 result=self.fw_result)  # fmt: skip
        self._changed.set()

    def on_event(self, ev: Event) -> None:
        """A /5/0/3 or /5/0/5 notification feeds the state in; a (re-)registration or wake-up triggers a re-read."""
        if ev.type == "registered":  # it came back (reboot, new firmware): that is progress
            self._alive_at = time.monotonic()
        if ev.type == "notification":
            st, res = values_from_notification(ev.data)
            if st is not None or res is not None:
                self._observe(st, res)
        else:
            self._changed.set()
            self._poke.set()

    async def _follow_events(self) -> None:
        """Without a dispatcher (see OtaService), subscribe to this device's events directly."""
        with self.ctx.events.subscribe(types=FOLLOW_EVENTS, endpoint=self.endpoint) as sub:
            async for ev in sub:
                self.on_event(ev)

    async def _poller(self) -> None:
        """Re-read /5/0 every poll interval (and when poked); one read in flight at a time."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self.ctx.settings.poll_interval_s)
            self._poke.clear()
            try:
                await self._read_fw()
            except DeviceError as exc:  # rebooting, re-registering, asleep: the deadline decides
                log.debug("ota.poll_failed", endpoint=self.endpoint, code=exc.coap_code)

    async def _wait_for(self, phase: JobPhase) -> str:
        """Wait until a reading means execute/confirm; raise _Failed/_Retry on a failure result or silence."""
        timeout = self.ctx.settings.timeout_s
        while True:
            step = interpret(phase, self.fw_state, self.fw_result)
            if step.action in ("execute", "confirm"):
                return step.action
            if step.action == "fail":
                self._raise_for_result(step.result)
            served = self.ctx.served(self.package.sha256, self.endpoint)
            if served is not None and served[0] != self._served_bytes:  # the device is pulling blocks
                self._served_bytes, self._alive_at = served[0], time.monotonic()
            silent = time.monotonic() - self._alive_at
            if silent > timeout and self._device_awake():
                raise _Failed(Cause.TIMEOUT, None, f"no progress for {timeout:g}s while {phase}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.05, min(timeout - silent, 1.0)))

    def _device_awake(self) -> bool:
        """A sleeping queue-mode device is not silent: its timeout counts from the next wake-up."""
        reg = self.ctx.registry.get(self.endpoint)
        if reg is None or not reg.queue_mode:
            return True
        queue = getattr(self.ctx.client, "queue", None)
        if queue is None:
            return True
        if not queue.is_awake(reg):
            self._alive_at = time.monotonic()
            return False
        return True

    def _raise_for_result(self, result: int | None) -> None:
        decision = on_failure(result, self.state.attempt, self.ctx.settings.max_retries, 0.0)
        if decision.retry:
            raise _Retry(result or 0, f"update result {result}")
        raise _Failed(decision.cause or Cause.UPDATE_RESULT, result)

    # -- the sequence ------------------------------------------------------------------------------------------
    async def run(self) -> JobRecord:
        follower = asyncio.create_task(self._follow_events() if not self.ctx.dispatched else asyncio.sleep(0))
        poller: asyncio.Task[None] | None = None
        try:
            resume_at = await self._resume_point()
            while not self.state.terminal:
                try:
                    if resume_at is None:
                        await self._prepare_and_deliver()
                    if poller is None:
                        poller = asyncio.create_task(self._poller())
                    await self._finish(resume_at or JobPhase.DOWNLOADING)
                except _Retry as retry:
                    decision = on_failure(retry.result, self.state.attempt, self.ctx.settings.max_retries,
                                          self.ctx.settings.retry_backoff_s)  # fmt: skip
                    if not decision.retry:
                        raise _Failed(decision.cause or Cause.RETRIES_EXHAUSTED, retry.result, retry.detail) from None
                    self.state.result = retry.result
                    await self._move(JobPhase.RETRY_WAIT, f"{retry.detail}; retry in {decision.delay_s:.1f}s")
                    await asyncio.sleep(decision.delay_s)
                    self.state.attempt += 1
                    resume_at = None
        except _Failed as failed:
            cause = failed.cause
            if cause is Cause.UPDATE_RESULT and failed.result == 8 and await self._arena_too_big():
                cause = Cause.NOT_FITTING  # TFLM could not allocate the arena: re-plan, do not retry
            await self._fail(cause, failed.result, failed.detail)
        except asyncio.CancelledError:
            if not self._cancel_requested:
                raise
            await self._reset_device(cancel=True)
            await self._fail(Cause.CANCELLED, None, "cancelled by operator")
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
        try:
            await self._read_fw()
        except DeviceError:
            return None
        if phase in (JobPhase.UPDATING, JobPhase.CONFIRMING):
            return JobPhase.UPDATING
        fetching = self.fw_state in (FirmwareState.DOWNLOADING, FirmwareState.DOWNLOADED)
        if fetching and (phase is JobPhase.DOWNLOADING or self.record.method == "pull"):
            return JobPhase.DOWNLOADING  # still downloading (pull) or already downloaded: keep going
        if failure_class(self.fw_result) is not None:
            return JobPhase.DOWNLOADING  # the device gave up meanwhile: its result decides (retry, not fitting...)
        return None

    async def _prepare_and_deliver(self) -> None:
        await self._move(JobPhase.PREPARING, f"attempt {self.state.attempt}")
        content = await self._call(self._read_fw)
        if self.fw_state not in (FirmwareState.IDLE, None) or self.fw_result not in (
            UpdateResult.INITIAL,
            UpdateResult.SUCCESS,
            None,
        ):
            await self._reset_device(cancel=False)
            content = await self._call(self._read_fw)
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
            raise _Failed(Cause.NO_METHOD, None, str(exc)) from None
        self.record.method = choice.method
        self.fw_result = None  # a previous attempt's result must not be read as this attempt's
        await self._move(JobPhase.DELIVERING, choice.method)
        if choice.uri is not None:
            await self._idempotent(lambda: self.ctx.client.write(self.endpoint, FW.child(1), {FW.child(1): choice.uri}),
                                   done_states=(FirmwareState.DOWNLOADING, FirmwareState.DOWNLOADED))  # fmt: skip
        else:
            await self._push()

    async def _push(self) -> None:
        data = await self.ctx.packages.read(self.package.sha256)
        if data is None:
            raise _Failed(Cause.DEVICE_ERROR, None, "package bytes missing from the store")

        async def send(chunk: bytes, num: int, more: bool, szx: int, size1: int | None) -> BlockReply:
            for attempt in range(BLOCK_TRIES):  # a block is idempotent: resend it after a lost exchange
                try:
                    resp = await self.ctx.client.raw_request(self.endpoint, "PUT", "/5/0/0", chunk, content_format=42,
                                                             block1=(num, szx, more), size1=size1)  # fmt: skip
                    break
                except DeviceTimeout:
                    if attempt == BLOCK_TRIES - 1:
                        raise
                    log.info("ota.push_block_resent", endpoint=self.endpoint, block=num)
            self._alive_at = time.monotonic()
            b1 = resp.block1
            return BlockReply(resp.code, (b1[0], bool(b1[2]), b1[1]) if b1 else None, resp.size1)

        try:
            await push_package(data, send, block_size=self.ctx.settings.block_size, progress=self._progress)
        except PushError as exc:
            if exc.too_large:
                raise _Failed(Cause.NOT_FITTING, 2, str(exc)) from None
            raise _Retry(4, f"push failed: {exc}") from None
        except DeviceTimeout:
            raise _Retry(4, "push: device stopped answering") from None

    async def _finish(self, start: JobPhase) -> None:
        if start is JobPhase.DOWNLOADING:
            await self._move(JobPhase.DOWNLOADING)
            self._poke.set()
            action = await self._wait_for(JobPhase.DOWNLOADING)
            if action == "execute":
                await self._move(JobPhase.UPDATING, "execute /5/0/2")
                await self._idempotent(lambda: self.ctx.client.execute(self.endpoint, FW.child(2)),
                                       done_states=(FirmwareState.UPDATING, FirmwareState.IDLE))  # fmt: skip
                if self.fw_state == FirmwareState.DOWNLOADED:
                    self.fw_state = int(FirmwareState.UPDATING)
        else:
            await self._move(JobPhase.UPDATING, "resumed")
        self._poke.set()
        await self._wait_for(JobPhase.UPDATING)
        await self._move(JobPhase.CONFIRMING)
        await self._confirm()

    async def _confirm(self) -> None:
        if self.package.kind == "firmware":
            await self._move(JobPhase.SUCCEEDED, "Update Result 1")
            return
        content = await self._call(lambda: self.ctx.client.read(self.endpoint, MODEL))
        sha = str(content.get(MODEL.child(MODEL_SHA), "")).lower()
        health = str(content.get(MODEL.child(MODEL_HEALTH), ""))
        self.record.progress.update(model_sha256=sha, health=health)
        if sha != self.package.payload_sha256.lower():
            raise _Failed(Cause.NOT_CONFIRMED, 1, f"/32002/0/2 reports {sha[:16] or 'nothing'}, expected "
                          f"{self.package.payload_sha256[:16]}")  # fmt: skip
        if health != "ok":
            raise _Failed(Cause.NOT_CONFIRMED, 1, f"/32002/0/12 health is {health!r}")
        await self._move(JobPhase.SUCCEEDED, f"confirmed sha256 {sha[:16]} health ok")

    async def _idempotent(self, make: Callable[[], Awaitable[Any]], done_states: tuple[int, ...]) -> None:
        """A write/execute whose answer may have been lost: a 4.05 on the resend is fine if the device already
        moved to one of ``done_states`` (the first request did arrive)."""
        try:
            await self._call(make)
        except _Failed as failed:
            if "4.05" not in failed.detail:
                raise
            await self._call(self._read_fw)
            if self.fw_state not in done_states:
                raise

    async def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """A request the job cannot do without. Lost exchanges and a re-registering device are retried until
        the job's silence timeout; a CoAP error answer ends the job (``device_error``)."""
        while True:
            try:
                result = await make()
            except DeviceError as exc:
                if not isinstance(exc, DeviceTimeout | DeviceNotRegistered) and exc.coap_code != "network":
                    raise _Failed(Cause.DEVICE_ERROR, None, f"device answered {exc.coap_code}: {exc.message}") from None
                # unreachable for now (lost exchange, ICMP unreachable, re-registering): retry until silence
                if time.monotonic() - self._alive_at > self.ctx.settings.timeout_s and self._device_awake():
                    raise _Failed(Cause.TIMEOUT, None, f"device did not answer ({exc.coap_code})") from None
                await asyncio.sleep(0.2 if isinstance(exc, DeviceTimeout) else 1.0)
                continue
            self._alive_at = time.monotonic()
            return result

    async def _reset_device(self, *, cancel: bool) -> None:
        """Write the reset value (empty URI, else a NUL package); on cancel also Execute /5/0/10 if it exists."""
        try:
            await self.ctx.client.write(self.endpoint, FW.child(1), {FW.child(1): ""})
        except DeviceError:
            with contextlib.suppress(DeviceError):
                await self.ctx.client.raw_request(self.endpoint, "PUT", "/5/0/0", b"\x00", content_format=42)
        if cancel:
            with contextlib.suppress(DeviceError):
                await self.ctx.client.execute(self.endpoint, FW.child(10))

    def cancel(self, task: asyncio.Task[Any]) -> None:
        self._cancel_requested = True
        task.cancel()
