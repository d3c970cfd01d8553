"""RolloutService: what REST, CLI and MQTT call. Creates rollouts, applies operator actions, resumes on start.

With a :class:`~lwm2m_server.rollouts.leadership.RolloutLeadership` (several nodes on one store), a node runs a
rollout only while it holds the rollout's lease: any node records operator actions, the leader's runner notices
them when its lease renewal wakes it, and a scan takes over running rollouts whose leader stopped renewing.
Without one (a single node on SQLite: nothing to elect), every running rollout runs here, as always.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.rollouts.classes import UNKNOWN, class_name
from lwm2m_server.rollouts.engine import RolloutRunner
from lwm2m_server.rollouts.filters import parse_filter
from lwm2m_server.rollouts.leadership import RolloutLeadership
from lwm2m_server.rollouts.model import Deployer, RolloutSpec
from lwm2m_server.rollouts.repository import RolloutRepository, RolloutRow
from lwm2m_server.rollouts.states import DeviceState, InvalidAction, RolloutState, check_action
from lwm2m_server.rollouts.waves import parse_waves, split_waves

log = get_logger(__name__)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]


class RolloutNotFound(KeyError):
    pass


class EmptyTarget(ValueError):
    """The spec matches no registered device and ``allow_empty`` was not set: the rollout is not created."""


class RolloutService:
    def __init__(self, repo: RolloutRepository, deployer: Deployer, publish: Publish | None = None,
                 leadership: RolloutLeadership | None = None) -> None:
        self.repo = repo
        self.deployer = deployer
        self._publish = publish
        self.leadership = leadership
        self._runners: dict[str, tuple[RolloutRunner, asyncio.Task[None]]] = {}
        self._lock = asyncio.Lock()
        self._scan: asyncio.Task[None] | None = None

    async def _notify(self, event_type: str, data: dict[str, Any]) -> None:
        if self._publish is not None:
            await self._publish(event_type, data)

    # --- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open tables and resume every rollout that was running when the server stopped."""
        await self.repo.open()
        if self.leadership is None:
            for rollout in await self.repo.list_rollouts(RolloutState.RUNNING):
                await self.repo.audit("rollout.resumed_after_restart", rollout_id=rollout.id)
                self._spawn(rollout.id)
            return
        await self.claim_running(after_restart=True)
        self._scan = asyncio.create_task(self._scan_loop(self.leadership), name="rollout-lease-scan")

    def running_here(self, rollout_id: str) -> bool:
        entry = self._runners.get(rollout_id)
        return entry is not None and not entry[1].done()

    async def claim_running(self, *, after_restart: bool = False) -> list[str]:
        """Take the lease of every running rollout without a live leader and run it here; the ids taken."""
        assert self.leadership is not None
        taken = []
        running = [r for r in await self.repo.list_rollouts(RolloutState.RUNNING) if not self.running_here(r.id)]
        led = await self.leadership.led_elsewhere() if running else set()
        for rollout in running:
            if rollout.id in led:
                continue
            async with self._lock:  # not between an operator's resume here and its own claim
                if not self.running_here(rollout.id) and await self._claim(rollout.id, after_restart=after_restart):
                    taken.append(rollout.id)
        return taken

    async def _claim(self, rollout_id: str, *, after_restart: bool = False) -> bool:
        assert self.leadership is not None
        claim = await self.leadership.acquire(rollout_id)
        if not claim.won:
            return False
        if claim.previous is not None or not after_restart:
            await self.repo.audit("rollout.taken_over", rollout_id=rollout_id, actor=self.leadership.node_id,
                                  detail={"from": claim.previous, "to": self.leadership.node_id})
            log.info("rollout.taken_over", rollout=rollout_id, previous=claim.previous)
        else:
            await self.repo.audit("rollout.resumed_after_restart", rollout_id=rollout_id)
        self._spawn(rollout_id)
        return True

    async def _scan_loop(self, leadership: RolloutLeadership) -> None:
        while True:
            await asyncio.sleep(leadership.interval_s)
            try:
                await self.claim_running()
            except Exception as exc:  # a store hiccup must not end the scan for good
                log.warning("rollout.lease_scan_failed", error=repr(exc))

    async def _start_here(self, rollout_id: str) -> None:
        """After start/resume/retry: run it here, unless another node leads it (its runner notices the state)."""
        if self.leadership is None or self.running_here(rollout_id):
            self._spawn(rollout_id)
            return
        claim = await self.leadership.acquire(rollout_id)
        if claim.won:
            self._spawn(rollout_id)

    async def stop(self) -> None:
        if self._scan is not None:
            self._scan.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scan
            self._scan = None
        tasks = [t for _, t in self._runners.values()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._runners.clear()
        await self.repo.flush()

    def _spawn(self, rollout_id: str) -> None:
        current = self._runners.get(rollout_id)
        if current is not None and not current[1].done():
            current[0].wake.set()
            return
        runner = RolloutRunner(rollout_id, self.repo, self.deployer, self._notify)
        task = asyncio.create_task(self._run(runner), name=f"rollout-{rollout_id}")
        self._runners[rollout_id] = (runner, task)

    async def _run(self, runner: RolloutRunner) -> None:
        task = asyncio.current_task()
        assert task is not None
        keeper = None
        if self.leadership is not None:
            keeper = asyncio.create_task(self._keep_lease(self.leadership, runner, task),
                                         name=f"rollout-lease-{runner.rollout_id}")
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("rollout.crashed", rollout=runner.rollout_id, error=repr(exc))
            await self.repo.set_state(runner.rollout_id, RolloutState.FAILED, f"internal error: {exc}")
            await self.repo.audit("rollout.failed", rollout_id=runner.rollout_id, detail={"error": repr(exc)})
        finally:
            if keeper is not None and self.leadership is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
                with contextlib.suppress(Exception):  # else it simply expires
                    await self.leadership.release(runner.rollout_id)

    async def _keep_lease(self, leadership: RolloutLeadership, runner: RolloutRunner,
                          task: asyncio.Task[None]) -> None:
        """Renew the lease every ttl/3 and wake the runner (it re-reads the state other nodes may have changed);
        stop the runner, leaving the stored state alone, once the lease is no longer ours."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(leadership.interval_s)
            try:
                held = await leadership.renew(runner.rollout_id)
            except Exception as exc:  # the store is failing: keep going only while the lease cannot have expired
                log.warning("rollout.lease_renew_failed", rollout=runner.rollout_id, error=repr(exc))
                held = loop.time() - renewed < leadership.ttl_s - leadership.interval_s
            else:
                renewed = loop.time() if held else renewed
            if not held:
                log.warning("rollout.lease_lost", rollout=runner.rollout_id, node=leadership.node_id)
                task.cancel()
                return
            runner.wake.set()

    async def wait_idle(self, rollout_id: str) -> None:
        """Wait until the rollout's runner has exited (completed, paused, cancelled or failed)."""
        entry = self._runners.get(rollout_id)
        if entry is not None:
            await asyncio.shield(entry[1])

    # --- operator actions --------------------------------------------------------------------------------
    async def create(self, spec: RolloutSpec, *, start: bool = False, actor: str = "operator") -> RolloutRow:
        targets = await self._targets(spec)
        if not targets and not spec.allow_empty:
            raise EmptyTarget(await self._why_empty(spec))
        rollout = await self.repo.create(spec)
        waves = split_waves(sorted(targets), parse_waves(spec.waves), spec.canaries)
        rows: list[tuple[int, str, str | None]] = []
        for i, wave in enumerate(waves):
            for ep in wave:
                rows.append((i, ep, targets[ep]))
        await self.repo.add_devices(rollout.id, rows)
        await self.repo.set_wave(rollout.id, 0, len(waves))
        await self.repo.audit("rollout.created", rollout_id=rollout.id, actor=actor,
                              detail={"spec": spec.model_dump(), "devices": len(rows), "waves": len(waves)})
        await self.repo.flush()
        if start:
            await self.action(rollout.id, "start", actor=actor)
        got = await self.repo.get(rollout.id)
        assert got is not None
        return got

    async def _targets(self, spec: RolloutSpec) -> dict[str, str | None]:
        """endpoint -> compile class key, for every registered device the spec targets."""
        flt = parse_filter(spec.filter)
        explicit = set(spec.endpoints) if spec.endpoints is not None else None
        out: dict[str, str | None] = {}
        for ep in await self.deployer.registered_endpoints():
            if explicit is not None and ep not in explicit:
                continue
            attrs = await self.deployer.device_attributes(ep)
            if attrs is None or not flt.matches(attrs):
                continue
            out[ep] = self.deployer.class_of(attrs)[0]
        return out

    async def _why_empty(self, spec: RolloutSpec) -> str:
        registered = await self.deployer.registered_endpoints()
        if not registered:
            why = "no device is registered"
        elif spec.endpoints is not None and not set(spec.endpoints) & set(registered):
            why = f"none of the {len(spec.endpoints)} given endpoint(s) is registered"
        else:
            why = f"the filter {spec.filter!r} matches none of the {len(registered)} registered device(s)"
        return (f"{why}; not created. Check the filter with `tinymlaas models plan {spec.model} --filter ...`, or "
                f"pass --allow-empty (\"allow_empty\": true) to create it anyway (with --dynamic, devices that "
                f"register later join)")

    async def action(self, rollout_id: str, action: str, *, actor: str = "operator") -> RolloutRow:
        async with self._lock:
            rollout = await self.repo.get(rollout_id)
            if rollout is None:
                raise RolloutNotFound(rollout_id)
            check_action(action, rollout.state)
            await self.repo.audit(f"action.{action}", rollout_id=rollout_id, actor=actor)
            if action in ("start", "resume"):
                await self.repo.set_state(rollout_id, RolloutState.RUNNING)
                await self.repo.flush()
                await self._start_here(rollout_id)
            elif action == "pause":
                await self.repo.set_state(rollout_id, RolloutState.PAUSED, "paused by operator")
                await self.repo.flush()
                self._wake(rollout_id)
            elif action == "cancel":
                await self.repo.set_state(rollout_id, RolloutState.CANCELLED, "cancelled by operator")
                entry = self._runners.get(rollout_id)
                runner = entry[0] if entry else RolloutRunner(rollout_id, self.repo, self.deployer, self._notify)
                await runner.cancel_in_flight()
                await self.repo.flush()
                self._wake(rollout_id)
            elif action == "retry":
                failed = await self.repo.devices(rollout_id, state=DeviceState.FAILED)
                for d in failed:
                    await self.repo.set_device(rollout_id, d.endpoint, DeviceState.PENDING, cause=None)
                    await self.repo.audit("device.retry", rollout_id=rollout_id, endpoint=d.endpoint, actor=actor)
                if failed:
                    # Go back to the earliest wave that has work again, then run.
                    await self.repo.set_wave(rollout_id, min(min(d.wave for d in failed), rollout.current_wave))
                await self.repo.set_state(rollout_id, RolloutState.RUNNING)
                await self.repo.flush()
                await self._start_here(rollout_id)
            got = await self.repo.get(rollout_id)
            assert got is not None
            await self._notify("rollout.progress", {"rollout_id": rollout_id, "state": got.state.value,
                                                    "action": action})
            return got

    def _wake(self, rollout_id: str) -> None:
        entry = self._runners.get(rollout_id)
        if entry is not None:
            entry[0].wake.set()

    async def device_registered(self, endpoint: str) -> None:
        """Dynamic membership: a newly registered device matching a running rollout's filter joins its last wave."""
        for rollout in await self.repo.running():
            if not rollout.spec.dynamic:
                continue
            if rollout.spec.endpoints is not None and endpoint not in rollout.spec.endpoints:
                continue
            attrs = await self.deployer.device_attributes(endpoint)
            if attrs is None or not parse_filter(rollout.spec.filter).matches(attrs):
                continue
            wave = max(rollout.wave_count - 1, 0)
            existing = {d.endpoint for d in await self.repo.devices(rollout.id)}
            if endpoint in existing:
                continue
            await self.repo.add_devices(rollout.id, [(wave, endpoint, self.deployer.class_of(attrs)[0])])
            await self.repo.audit("device.joined", rollout_id=rollout.id, endpoint=endpoint)
            await self.repo.flush()
            self._wake(rollout.id)

    # --- queries -----------------------------------------------------------------------------------------
    async def get(self, rollout_id: str, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        rollout = await self.repo.get(rollout_id)
        if rollout is None:
            raise RolloutNotFound(rollout_id)
        by_state: Counter[str] = Counter()
        by_wave: dict[int, Counter[str]] = defaultdict(Counter)
        by_class: dict[str, Counter[str]] = defaultdict(Counter)
        for r in await self.repo.counts(rollout_id):
            by_state[r["state"]] += r["n"]
            by_wave[r["wave"]][r["state"]] += r["n"]
            by_class[r["class_key"] or "unknown"][r["state"]] += r["n"]
        classes = {c["class_key"]: c for c in await self.repo.classes(rollout_id)}
        names = await self._class_names(rollout_id, classes)
        devices = await self.repo.devices(rollout_id, limit=limit, offset=offset)
        return {
            **self.summary(rollout),
            "counts": dict(by_state),
            "total": sum(by_state.values()),
            "waves": [{"wave": w, "counts": dict(c)} for w, c in sorted(by_wave.items())],
            "classes": [{"class_key": k, "class_name": names.get(k, k),
                         **{kk: vv for kk, vv in classes.get(k, {}).items() if kk != "class_key"},
                         "counts": dict(c)} for k, c in sorted(by_class.items())],
            "devices": [{"endpoint": d.endpoint, "wave": d.wave, "class_key": d.class_key,
                         "class_name": names.get(d.class_key or "unknown"), "state": d.state.value,
                         "cause": d.cause, "job_id": d.job_id, "attempts": d.attempts} for d in devices],
            "limit": limit,
            "offset": offset,
        }

    async def _class_names(self, rollout_id: str, classes: dict[str, dict[str, Any]]) -> dict[str, str]:
        """class_key -> human name, from one member device's hardware (else the stored target, without the CPU)."""
        names: dict[str, str] = {}
        for key, endpoint in (await self.repo.class_members(rollout_id)).items():
            attrs = await self.deployer.device_attributes(endpoint)
            if attrs is not None and self.deployer.class_of(attrs)[0] == key:
                names[key] = class_name(self.deployer.class_of(attrs)[1], [attrs.get("cpu")], fallback=key)
            elif key in classes:
                names[key] = class_name(classes[key].get("target"), fallback=key)
            else:
                names[key] = UNKNOWN if key in ("hardware-unknown", "unknown") else key
        return names

    @staticmethod
    def summary(rollout: RolloutRow) -> dict[str, Any]:
        return {"id": rollout.id, "state": rollout.state.value, "current_wave": rollout.current_wave,
                "wave_count": rollout.wave_count, "reason": rollout.reason, "spec": rollout.spec.model_dump(),
                "created_at": rollout.created_at, "updated_at": rollout.updated_at}

    async def list_rollouts(self) -> list[dict[str, Any]]:
        return [self.summary(r) for r in await self.repo.list_rollouts()]


__all__ = ["EmptyTarget", "InvalidAction", "RolloutNotFound", "RolloutService"]
