"""Which node runs each OTA job when several nodes share a store: the node that started it (``ota_jobs.node_id``).

A node resumes only its own unfinished jobs on start (and claims rows with no owner, from before owners were
recorded). When a device registers through node X while its active job belongs to a node that is dead (no
heartbeat for the node timeout) or no longer holds the device, X adopts the job with one conditional update, so
of several nodes only one wins, and resumes it; the job re-checks the device first, so a device that already
installed the package is confirmed, never updated twice. One node (SQLite) has no ownership at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lwm2m_server.logging import get_logger
from lwm2m_server.ota.record import JobRecord
from lwm2m_server.store.repositories import NodeRepository, OtaJobRepository

log = get_logger(__name__)


@dataclass(frozen=True)
class JobOwnership:
    node_id: str
    jobs: OtaJobRepository
    nodes: NodeRepository
    node_timeout_s: float

    async def claim_for_resume(self, record: JobRecord) -> bool:
        """On start: True for this node's own jobs, and for unowned ones this node claims first."""
        if record.node_id == self.node_id:
            return True
        return record.node_id is None and await self._take(record)

    async def adopt(self, record: JobRecord) -> bool:
        """The device registered here: take its active job over if its owner is gone or lost the device."""
        old = record.node_id
        if old == self.node_id or not await self._owner_gone(old, record.endpoint):
            return False
        if not await self._take(record):
            return False
        log.info("ota.job_adopted", job=record.id, endpoint=record.endpoint, from_node=old, node=self.node_id)
        return True

    async def still_mine(self, record: JobRecord) -> bool:
        """After a save: does this node still own the job (its save applied), or did another node adopt it?"""
        stored = await self.jobs.get(record.id)
        return stored is not None and stored.node_id == self.node_id

    async def _owner_gone(self, owner: str | None, endpoint: str) -> bool:
        if owner is None:
            return True
        seen = {n.node_id: n.last_seen for n in await self.nodes.nodes()}
        if time.time() - seen.get(owner, 0.0) >= self.node_timeout_s:
            return True  # dead: no heartbeat for the node timeout
        return await self.nodes.owner(endpoint) != owner  # alive, but the device's session moved

    async def _take(self, record: JobRecord) -> bool:
        if not await self.jobs.adopt(record.id, record.node_id, self.node_id):
            return False
        record.node_id = self.node_id
        return True
