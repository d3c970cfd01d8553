"""The rollout engine: plan compile classes, then drive waves of OTA jobs under thresholds and pacing.

One :class:`RolloutRunner` task per running rollout. It reads and writes only through the repository,
so killing the server at any point and starting it again resumes every rollout: devices handed to OTA
are re-attached to their job (the OTA service re-checks the device), devices that already report the
package's sha256 are counted confirmed without a second update, and pending devices are still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.rollouts.model import Build, Deployer, Incompatible, Outcome
from lwm2m_server.rollouts.pacing import RateLimiter
from lwm2m_server.rollouts.repository import DeviceRow, RolloutRepository, RolloutRow
from lwm2m_server.rollouts.states import Decision, DeviceState, RolloutState, decide, error_threshold_crossed

log = get_logger(__name__)

Notify = Callable[[str, dict[str, Any]], Awaitable[None]]


class RolloutRunner:
    def __init__(self, rollout_id: str, repo: RolloutRepository, deployer: Deployer, notify: Notify) -> None:
        self.rollout_id = rollout_id
        self.repo = repo
        self.deployer = deployer
        self.notify = notify
        self.wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._builds: dict[str, Build | Incompatible] = {}
        self._building: dict[str, asyncio.Future[Build | Incompatible]] = {}
        self._limiter: RateLimiter | None = None

    # --- planning ----------------------------------------------------------------------------------------
    async def build_for(self, rollout: RolloutRow, class_key: str | None, endpoint: str) -> Build | Incompatible:
        """One compile and one signed package per class, however many of its devices start at once."""
        key = class_key or "unknown"
        if key in self._builds:
            return self._builds[key]
        pending = self._building.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._build(rollout, key, endpoint))
            self._building[key] = pending
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done():
                self._building.pop(key, None)

    async def _build(self, rollout: RolloutRow, key: str, endpoint: str) -> Build | Incompatible:
        attrs = await self.deployer.device_attributes(endpoint) or {}
        _, target = self.deployer.class_of(attrs)
        result = await self.deployer.build(rollout.spec.model, key, target)
        self._builds[key] = result
        await self.repo.save_class(self.rollout_id, target, result)
        return result

    async def _load_builds(self) -> None:
        for c in await self.repo.classes(self.rollout_id):
            if c["package_sha"]:
                self._builds[c["class_key"]] = Build(
                    c["class_key"], c["variant"], c["package_sha"], c["size"], c["arena_bytes"], c["accuracy"],
                    payload_sha=c["payload_sha"] or "",
                )
            else:
                self._builds[c["class_key"]] = Incompatible(c["class_key"], c["reason"] or "nothing fits")

    # --- main loop ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        await self._load_builds()
        while True:
            await self._run_until_stopped()
            # A resume while we waited for in-flight devices only woke this runner (the service does not start a
            # second one while it lives): carry on instead of leaving a RUNNING rollout without a runner.
            rollout = await self.repo.get(self.rollout_id)
            if rollout is None or rollout.state is not RolloutState.RUNNING:
                return

    async def _run_until_stopped(self) -> None:
        try:
            await self._reattach()
            while True:
                rollout = await self.repo.get(self.rollout_id)
                if rollout is None or rollout.state is not RolloutState.RUNNING:
                    break
                self._limiter = self._limiter or RateLimiter(rollout.spec.rate_per_minute)
                step = await self._step(rollout)
                if step == "again":
                    continue
                if step == "stop":
                    break
                self.wake.clear()
                waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self.wake.wait())}
                waiters |= set(self._in_flight.values())
                delay = self._limiter.delay()
                await asyncio.wait(waiters, timeout=delay if delay > 0 else None, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    if w not in self._in_flight.values():
                        w.cancel()
        except asyncio.CancelledError:
            # Server shutdown: stop following jobs; their state is in the store for the next start.
            tasks = list(self._in_flight.values())
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        # Paused (or finished): in-flight devices finish on their own; wait for them before exiting.
        if self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    async def _step(self, rollout: RolloutRow) -> str:
        """Start what may start, then judge the wave: ``again`` at once, ``wait`` for news, or ``stop``."""
        wave = rollout.current_wave
        devices = await self.repo.devices(self.rollout_id, wave=wave)
        pending = [d for d in devices if d.state is DeviceState.PENDING and d.endpoint not in self._in_flight]
        assert self._limiter is not None
        for device in pending:
            if len(self._in_flight) >= rollout.spec.max_concurrency or self._limiter.delay() > 0:
                break
            self._limiter.take()
            self._launch(rollout, device)
        whole_states: Counter[DeviceState] = Counter()
        for r in await self.repo.counts(self.rollout_id):
            whole_states[DeviceState(r["state"])] += r["n"]
        wave_states = Counter(d.state for d in await self.repo.devices(self.rollout_id, wave=wave))
        last = wave >= rollout.wave_count - 1
        decision = decide(wave_states, whole_states, rollout.spec.thresholds(), last_wave=last)
        if decision is Decision.WAIT:
            return "wait"
        if decision is Decision.PAUSE:
            reason = error_threshold_crossed(whole_states, rollout.spec.thresholds()) or "error threshold"
            await self._transition(RolloutState.PAUSED, reason)
            return "stop"
        if decision is Decision.STALL:
            await self._transition(RolloutState.PAUSED, f"wave {wave} below the success threshold")
            return "stop"
        if decision is Decision.ADVANCE:
            await self.repo.set_wave(self.rollout_id, wave + 1)
            await self.repo.audit("wave.advanced", rollout_id=self.rollout_id, detail={"wave": wave + 1})
            await self.repo.flush()
            await self._progress()
            return "again"
        await self._transition(RolloutState.COMPLETED, None)
        return "stop"

    async def _transition(self, state: RolloutState, reason: str | None) -> None:
        await self.repo.set_state(self.rollout_id, state, reason)
        await self.repo.audit(f"rollout.{state.value}", rollout_id=self.rollout_id, detail={"reason": reason})
        await self.repo.flush()
        log.info("rollout.state", rollout=self.rollout_id, state=state.value, reason=reason)
        await self._progress()

    async def _progress(self) -> None:
        counts: Counter[str] = Counter()
        for r in await self.repo.counts(self.rollout_id):
            counts[r["state"]] += r["n"]
        rollout = await self.repo.get(self.rollout_id)
        await self.notify("rollout.progress", {
            "rollout_id": self.rollout_id,
            "state": rollout.state.value if rollout else None,
            "wave": rollout.current_wave if rollout else None,
            "counts": dict(counts),
        })

    # --- one device --------------------------------------------------------------------------------------
    def _launch(self, rollout: RolloutRow, device: DeviceRow) -> None:
        task = asyncio.create_task(self._device(rollout, device), name=f"rollout-{self.rollout_id}-{device.endpoint}")
        self._in_flight[device.endpoint] = task
        task.add_done_callback(functools.partial(self._done, device.endpoint))

    def _done(self, endpoint: str, _task: object = None) -> None:
        self._in_flight.pop(endpoint, None)
        self.wake.set()

    async def _set(self, endpoint: str, state: DeviceState, cause: str | None = None, **kw: Any) -> None:
        await self.repo.set_device(self.rollout_id, endpoint, state, cause=cause, **kw)
        if state.terminal:
            await self.repo.audit(f"device.{state.value}", rollout_id=self.rollout_id, endpoint=endpoint,
                                  detail={"cause": cause} if cause else None)
            await self._progress()

    async def _device(self, rollout: RolloutRow, device: DeviceRow) -> None:
        ep = device.endpoint
        try:
            await self._set(ep, DeviceState.COMPILING)
            build = await self.build_for(rollout, device.class_key, ep)
            if isinstance(build, Incompatible):
                await self._set(ep, DeviceState.INCOMPATIBLE, build.reason)
                return
            if await self.deployer.installed_sha(ep) in {build.payload_sha, build.package_sha}:
                await self._set(ep, DeviceState.SKIPPED, "already running this build")
                return
            job_id = await self.deployer.start(ep, build, method=rollout.spec.method,
                                               timeout_s=rollout.spec.device_timeout_s,
                                               max_retries=rollout.spec.max_retries)
            await self._set(ep, DeviceState.DELIVERING, job_id=job_id, attempt=True)
            await self.repo.flush()  # a restart must find the job id, never start a second job
            await self._follow(ep, job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a device's failure must not take the rollout down
            log.warning("rollout.device_error", rollout=self.rollout_id, endpoint=ep, error=repr(exc))
            await self._set(ep, DeviceState.FAILED, f"error: {exc}")

    async def _follow(self, endpoint: str, job_id: str) -> None:
        async def on_phase(phase: str) -> None:
            state = DeviceState.INSTALLING if phase == "installing" else DeviceState.DELIVERING
            await self.repo.set_device(self.rollout_id, endpoint, state)

        outcome = await self.deployer.wait(job_id, on_phase)
        await self._finish(endpoint, outcome)

    async def _finish(self, endpoint: str, outcome: Outcome) -> None:
        state = {
            "confirmed": DeviceState.CONFIRMED,
            "failed": DeviceState.FAILED,
            "not_fitting": DeviceState.INCOMPATIBLE,
            "cancelled": DeviceState.CANCELLED,
        }[outcome.status]
        await self._set(endpoint, state, outcome.cause)

    async def _reattach(self) -> None:
        """After a restart: follow the jobs that were running; forget half-done compiles."""
        rollout = await self.repo.get(self.rollout_id)
        if rollout is None:
            return
        for d in await self.repo.devices(self.rollout_id):
            if d.state is DeviceState.COMPILING or (d.state.in_flight and not d.job_id):
                await self.repo.set_device(self.rollout_id, d.endpoint, DeviceState.PENDING)
            elif d.state.in_flight and d.job_id and d.endpoint not in self._in_flight:
                task = asyncio.create_task(self._follow_safely(d.endpoint, d.job_id))
                self._in_flight[d.endpoint] = task
                task.add_done_callback(functools.partial(self._done, d.endpoint))

    async def _follow_safely(self, endpoint: str, job_id: str) -> None:
        try:
            await self._follow(endpoint, job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._set(endpoint, DeviceState.FAILED, f"error: {exc}")

    async def cancel_in_flight(self) -> None:
        for d in await self.repo.devices(self.rollout_id):
            if d.state.in_flight and d.job_id:
                with contextlib.suppress(Exception):
                    await self.deployer.cancel(d.job_id)
            if not d.state.terminal:
                await self.repo.set_device(
                    self.rollout_id, d.endpoint, DeviceState.CANCELLED, cause="rollout cancelled"
                )
        for t in list(self._in_flight.values()):
            t.cancel()
