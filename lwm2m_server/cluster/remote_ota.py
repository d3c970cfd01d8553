"""OTA for a device another node holds: what a rollout leader uses when the device's CoAP session is elsewhere.

The leader asks the owning node over the :class:`~lwm2m_server.cluster.forwarding.DeviceForwarder` what the
device runs (``ota_installed``, so a device already on the build is skipped), to start (``ota_start``) or cancel
(``ota_cancel``) the job there, on its own session with the device, and then follows
the job through its row in the shared store: the job's node writes every transition there, whichever node
carries the job on (after its node dies, the node the device re-registers through adopts it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lwm2m_server.cluster.forwarding import DeviceForwarder, Reply
from lwm2m_server.logging import get_logger
from lwm2m_server.ota.job_state import TERMINAL
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.ota.service import OtaError, OtaService
from lwm2m_server.store.repositories import OtaJobRepository

log = get_logger(__name__)

OPS = frozenset({"ota_start", "ota_cancel", "ota_installed"})
Installed = Callable[[str], Awaitable[str | None]]
"""The sha256 a device this node holds reports running (the deployer's view of its /32002/0 notifications)."""


class RemoteOtaError(RuntimeError):
    """The owning node refused the request (its OTA service's message) or could not be reached."""


class RemoteOta:
    def __init__(self, forwarder: DeviceForwarder, jobs: OtaJobRepository, *, poll_s: float = 0.5) -> None:
        self._forwarder = forwarder
        self._jobs = jobs
        self.poll_s = poll_s

    async def owner_elsewhere(self, endpoint: str) -> str | None:
        """The other node that holds the device's registration, or None when it is this node's (or nobody's)."""
        return await self._forwarder.owner_elsewhere(endpoint)

    async def start(self, owner: str, endpoint: str, package_sha: str, *, method: str | None,
                    timeout_s: float | None, max_retries: int | None) -> str:
        status, body = await self._forwarder.forward(owner, {
            "op": "ota_start", "endpoint": endpoint, "package": package_sha, "method": method,
            "timeout_s": timeout_s, "max_retries": max_retries})
        if status != 201 or not isinstance(body.get("job_id"), str):
            raise RemoteOtaError(f"node {owner} refused the update of {endpoint!r}: "
                                 f"{body.get('message', body)} ({status})")
        log.info("cluster_remote_ota_started", endpoint=endpoint, owner=owner, job=body["job_id"])
        return str(body["job_id"])

    async def installed(self, owner: str, endpoint: str) -> str | None:
        status, body = await self._forwarder.forward(owner, {"op": "ota_installed", "endpoint": endpoint})
        sha = body.get("sha")
        return sha if status == 200 and isinstance(sha, str) and sha else None

    async def cancel(self, owner: str, job_id: str) -> bool:
        status, body = await self._forwarder.forward(owner, {"op": "ota_cancel", "job_id": job_id})
        return status == 200 and bool(body.get("cancelled"))

    async def wait(self, job_id: str, on_phase: Callable[[JobRecord], Awaitable[None]] | None = None) -> JobRecord:
        """Poll the job's stored record until it is terminal; ``on_phase`` gets the record at each new phase."""
        seen: str | None = None
        while True:
            record = await self._jobs.get(job_id)
            if record is None:
                raise RemoteOtaError(f"unknown job {job_id}")
            if record.phase.value != seen:
                seen = record.phase.value
                if on_phase is not None:
                    await on_phase(record)
            if record.phase in TERMINAL:
                return record
            await asyncio.sleep(self.poll_s)


async def serve(ota: OtaService, installed: Installed, request: dict[str, Any]) -> Reply | None:
    """Carry out a forwarded OTA op here; None when the op is not an OTA one (the caller dispatches it on)."""
    op = request.get("op")
    if op not in OPS:
        return None
    try:
        if op == "ota_installed":
            return 200, {"sha": await installed(str(request["endpoint"]))}
        if op == "ota_start":
            timeout, retries = request.get("timeout_s"), request.get("max_retries")
            job_id = await ota.start_update(
                str(request["endpoint"]), str(request["package"]), method=request.get("method"),
                timeout_s=float(timeout) if timeout is not None else None,
                max_retries=int(retries) if retries is not None else None)
            return 201, {"job_id": job_id}
        return 200, {"cancelled": await ota.cancel(str(request["job_id"]))}
    except OtaError as exc:
        return exc.status, {"error": "ota", "message": str(exc)}
    except (KeyError, TypeError, ValueError) as exc:
        return 400, {"error": "bad_request", "message": f"bad forwarded {op} request: {exc!r}"}
