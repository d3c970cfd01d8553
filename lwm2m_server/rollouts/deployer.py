"""The production :class:`~lwm2m_server.rollouts.model.Deployer`: registry + profiles, CompileService, OtaService.

A compile class is the :class:`compilers.target.Target` a device's profile maps to; its key is the target's
stable hash. One compile and one signed package serve every device of the class.

With a :class:`~lwm2m_server.cluster.remote_ota.RemoteOta` (several nodes), the targets are every node's
registered devices (the shared store), a device another node holds is updated by that node, and every job is
followed through its stored record, since the job may live (or be adopted) on any node.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, is_dataclass
from typing import TYPE_CHECKING, Any

from lwm2m_server.cluster.forwarding import OwnerUnreachable
from lwm2m_server.events import Event
from lwm2m_server.inventory import DeviceProfile
from lwm2m_server.logging import get_logger
from lwm2m_server.ota import builds
from lwm2m_server.ota.job_state import ACTIVE, Cause, JobPhase
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.registration import Registration
from lwm2m_server.rollouts.model import Build, Incompatible, Outcome, PhaseCallback
from lwm2m_server.rollouts.prebuilt import package_sha, prebuilt_build

if TYPE_CHECKING:
    from lwm2m_server.cluster.remote_ota import RemoteOta

log = get_logger(__name__)

SHA_PATH = "/32002/0/2"
MODEL_PATH = LwM2MPath(32002, 0)
SHA_KEY = LwM2MPath(32002, 0, 2)
_INSTALLING = {JobPhase.UPDATING, JobPhase.CONFIRMING}
FLEET_SNAPSHOT_S = 5.0  # how long one bulk read of the fleet serves device_attributes (cluster mode)


def device_attributes(reg: Any, profile: Any) -> dict[str, Any]:
    """The attributes a rollout filter can use: registration fields plus the hardware profile."""
    attrs: dict[str, Any] = {
        "endpoint": reg.endpoint,
        "lwm2m_version": reg.lwm2m_version,
        "binding": reg.binding,
        "queue_mode": reg.queue_mode,
    }
    if profile is not None:
        # A shallow copy: filters and compile classes only read it (asdict's deep copy was most of the time of
        # filtering a 10,000-device fleet).
        attrs.update(vars(profile) if is_dataclass(profile) else profile.to_dict())
    return attrs


def class_of(attributes: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """A device's compile class: ``(key, target dict)``, or ``("hardware-unknown", None)``."""
    if not attributes.get("hardware_known"):
        return "hardware-unknown", None
    try:
        target = builds.target_from_profile(_Profile(attributes))
    except builds.BuildError:
        return "hardware-unknown", None
    return target.key(), target.to_dict()


class FleetDeployer:
    def __init__(self, server: Any, ota: Any, compiling: Any, catalog: Any, remote: RemoteOta | None = None) -> None:
        """``compiling``: the shared :class:`~lwm2m_server.compiling.Compiling`; ``catalog``: the ModelCatalog;
        ``remote``: set in cluster mode."""
        self.server = server
        self.ota = ota
        self.compiling = compiling
        self.catalog = catalog
        self.remote = remote
        self._fleet: _FleetSnapshot | None = None
        self._installed: dict[str, str] = {}
        self._watch: asyncio.Task[None] | None = None

    # --- lifecycle: follow /32002/0 notifications so "already installed" needs no extra read -------------
    def watch(self) -> None:
        sub = self.server.events.subscribe(types={"notification"})
        self._watch = asyncio.create_task(self._follow_models(sub), name="rollout-model-watch")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def _follow_models(self, sub: Any) -> None:
        async for event in sub:
            self._note(event)

    def _note(self, event: Event) -> None:
        content = event.data.get("content") or event.data.get("values") or {}
        if isinstance(content, dict):
            sha = content.get(SHA_PATH)
            if isinstance(sha, str) and event.endpoint:
                self._installed[event.endpoint] = sha

    @property
    def compile_service(self) -> Any:
        return self.compiling.service

    # --- Deployer protocol -------------------------------------------------------------------------------
    async def registered_endpoints(self) -> list[str]:
        if self.remote is not None:
            # Two bulk reads, kept briefly: targeting then asks device_attributes for each of these devices.
            regs = await self.server.store.fleet_registrations()
            self._fleet = _FleetSnapshot(time.monotonic(), {r.endpoint: r for r in regs},
                                         await self.server.store.load_profiles())
            return [reg.endpoint for reg in regs]
        return [reg.endpoint for reg in self.server.registry.all()]

    async def device_attributes(self, endpoint: str) -> dict[str, Any] | None:
        reg = self.server.registry.get(endpoint)
        if reg is None and self.remote is not None:
            snap = self._fleet
            if snap is not None and time.monotonic() - snap.taken < FLEET_SNAPSHOT_S and endpoint in snap.regs:
                data = snap.profiles.get(endpoint)
                return device_attributes(snap.regs[endpoint], DeviceProfile.from_dict(data) if data else None)
            reg = await self.server.store.fleet_registration(endpoint)
        if reg is None:
            return None
        return device_attributes(reg, await self.server.profile(endpoint))

    def class_of(self, attributes: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        return class_of(attributes)

    async def build(self, model: str, class_key: str, target: dict[str, Any] | None) -> Build | Incompatible:
        if target is None:
            return Incompatible(class_key, "hardware unknown: the device has no /32001 TinyML Hardware object")
        from compilers.target import Target
        tgt = Target.from_dict(target)
        sha = package_sha(model)
        if sha is not None:  # an uploaded, signed package: no compile, the same fit rules
            info = await self.ota.packages.get(sha)
            if info is None or info.kind != "model":
                return Incompatible(class_key, f"no model package {sha}")
            return prebuilt_build(info, class_key, tgt, self.server.settings.compile)
        source = await self.catalog.resolve_async(model)  # zoo name, or an upload with its data
        report = await self.compile_service.plan(source, tgt)
        art = report.chosen_artifact
        fit = report.chosen_fit
        if art is None or fit is None:
            return Incompatible(class_key, report.summary, report.to_json())
        secrets_dir = self.server.settings.secrets_dir
        blob, public_key = await asyncio.to_thread(builds.sign_artifact, art, model, secrets_dir, target)
        info = await self.ota.packages.add(blob, "model", public_key=public_key)
        return Build(class_key, fit.variant, info.sha256, fit.size, fit.arena_bytes, fit.accuracy, report.to_json(),
                     payload_sha=info.payload_sha256)

    async def installed_sha(self, endpoint: str) -> str | None:
        """From the latest /32002/0 notification, else the value the inventory's observation of it holds
        (its initial read after every Register, so this survives a server restart); for a device another node
        holds, that node's answer (this node's view of it may be stale)."""
        owner = await self.remote.owner_elsewhere(endpoint) if self.remote is not None else None
        if self.remote is not None and owner is not None:
            with contextlib.suppress(OwnerUnreachable):  # then starting the job fails and says why
                return await self.remote.installed(owner, endpoint)
            return None
        if endpoint in self._installed:
            return self._installed[endpoint]
        for obs in self.server.client.observations(endpoint):
            value = obs.value.get(SHA_KEY) if obs.path == MODEL_PATH else None
            if isinstance(value, str) and value:
                return value
        return None

    async def start(self, endpoint: str, build: Build, *, method: str | None, timeout_s: float | None,
                    max_retries: int | None) -> str:
        # A job for this package already running on the device (an operator's, or one a leader started just before
        # it died, unrecorded): follow it instead of a second update that would only be refused.
        latest = await self.ota.jobs_for(endpoint, limit=1)
        if latest and latest[0].package_sha256 == build.package_sha and latest[0].phase in ACTIVE:
            log.info("rollout.follows_running_job", endpoint=endpoint, job=latest[0].id)
            return str(latest[0].id)
        owner = await self.remote.owner_elsewhere(endpoint) if self.remote is not None else None
        if self.remote is not None and owner is not None:
            return await self.remote.start(owner, endpoint, build.package_sha, method=method, timeout_s=timeout_s,
                                           max_retries=max_retries)
        job_id: str = await self.ota.start_update(endpoint, build.package_sha, method=method, timeout_s=timeout_s,
                                                  max_retries=max_retries)
        return job_id

    async def wait(self, job_id: str, on_phase: PhaseCallback) -> Outcome:
        if self.remote is not None:
            reported: str | None = None

            async def phase_of(record: JobRecord) -> None:
                nonlocal reported
                phase = "installing" if record.phase in _INSTALLING else "delivering"
                if phase != reported:
                    reported = phase
                    await on_phase(phase)

            return await self._outcome(await self.remote.wait(job_id, phase_of))
        return await self._outcome(await self._wait_local(job_id, on_phase))

    async def _wait_local(self, job_id: str, on_phase: PhaseCallback) -> JobRecord:
        reported: str | None = None
        waiter = asyncio.ensure_future(self.ota.wait(job_id))
        try:
            while not waiter.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), 1.0)
                record = await self.ota.get_job(job_id)
                if record is not None:
                    phase = "installing" if record.phase in _INSTALLING else "delivering"
                    if phase != reported:
                        reported = phase
                        await on_phase(phase)
        finally:
            if not waiter.done():
                waiter.cancel()
        done: JobRecord = waiter.result()
        return done

    async def _outcome(self, record: JobRecord) -> Outcome:
        if record.phase is JobPhase.SUCCEEDED:
            package = await self.ota.packages.get(record.package_sha256)
            if package is not None:
                self._installed[record.endpoint] = package.payload_sha256
            return Outcome("confirmed")
        if record.phase is JobPhase.CANCELLED:
            return Outcome("cancelled", record.summary)
        if record.cause is Cause.NOT_FITTING:
            return Outcome("not_fitting", record.summary)
        return Outcome("failed", record.summary)

    async def cancel(self, job_id: str) -> None:
        if self.remote is not None:
            record = await self.ota.get_job(job_id)
            owner = await self.remote.owner_elsewhere(record.endpoint) if record is not None else None
            if owner is not None:
                await self.remote.cancel(owner, job_id)
                return
        await self.ota.cancel(job_id)


@dataclass(frozen=True)
class _FleetSnapshot:
    """Every node's registrations and profiles, read in bulk for one targeting pass (cluster mode)."""

    taken: float
    regs: dict[str, Registration]
    profiles: dict[str, dict[str, Any]]


class _Profile:
    """Attribute access over a profile dict, for :func:`builds.target_from_profile`."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)

    def __getattr__(self, name: str) -> Any:
        return None
