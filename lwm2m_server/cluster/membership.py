"""This node's membership of the cluster: a heartbeat row in ``nodes`` every ``heartbeat_s``, and the cluster
view behind ``GET /api/cluster`` and ``tinymlaas cluster status`` (nodes alive or not, devices per node, leases).

A node is *alive* while its last heartbeat is younger than ``node_timeout_s``; a SIGKILLed node simply stops
beating. On a clean stop the node removes its row. Liveness compares the nodes' clocks (keep them in NTP sync).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.store.repositories import LeaseRepository, NodeRepository, NodeRow

log = get_logger(__name__)


class NodeIdInUse(OSError):
    """Another live node already runs under this node id (an OSError: ``serve`` reports it like a busy port)."""


class ClusterMembership:
    def __init__(
        self,
        nodes: NodeRepository,
        leases: LeaseRepository,
        node_id: str,
        *,
        heartbeat_s: float = 5.0,
        node_timeout_s: float = 15.0,
        grace_s: float = 0.0,
        info: Callable[[], dict[str, Any]] = dict,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._nodes = nodes
        self._leases = leases
        self.node_id = node_id
        self.heartbeat_s = heartbeat_s
        self.node_timeout_s = node_timeout_s
        self.grace_s = grace_s  # registrations of dead nodes are swept once expired by this margin too
        self._info = info
        self._clock = clock
        self._started_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._check_unique()
        self._started_at = self._clock()
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="cluster-heartbeat")
        log.info("cluster_node_started", node_id=self.node_id, heartbeat_s=self.heartbeat_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(Exception):  # the store may already be failing: the row then times out
                await self._nodes.remove(self.node_id)

    async def _check_unique(self) -> None:
        """Refuse a node id that a live process on this host is using (two nodes sharing one data dir)."""
        for row in await self._nodes.nodes():
            pid, host = row.info.get("pid"), row.info.get("host")
            if (row.node_id != self.node_id or self._clock() - row.last_seen >= self.node_timeout_s
                    or host != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid()):
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue  # that process is gone (killed and restarted within the node timeout)
            except PermissionError:
                pass
            raise NodeIdInUse(f"node id {self.node_id!r} is in use by process {pid} on this host; give each node "
                              "its own data dir or [cluster] node_id (TINYMLAAS_CLUSTER__NODE_ID)")

    async def beat(self) -> None:
        await self._nodes.heartbeat(NodeRow(self.node_id, self._started_at, self._clock(), self._info()))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.beat()
                now = self._clock()
                swept = await self._nodes.sweep_expired(now - self.node_timeout_s, now, self.grace_s)
                if swept:
                    log.info("cluster_swept_dead_node_registrations", count=swept)
            except Exception as exc:  # a store hiccup must not end the heartbeat for good
                log.warning("cluster_heartbeat_failed", node_id=self.node_id, error=repr(exc))

    async def status(self) -> dict[str, Any]:
        now = self._clock()
        counts = await self._nodes.device_counts()
        rows = await self._nodes.nodes()
        known = {n.node_id for n in rows}
        nodes = [
            {"node_id": n.node_id, "alive": now - n.last_seen < self.node_timeout_s, "self": n.node_id == self.node_id,
             "last_seen": n.last_seen, "age_s": round(max(0.0, now - n.last_seen), 3), "started_at": n.started_at,
             "devices": counts.get(n.node_id, 0), "info": n.info}
            for n in rows
        ]
        leases = [{"name": lease.name, "holder": lease.holder, "expires_at": lease.expires_at,
                   "valid": lease.expires_at > now} for lease in await self._leases.leases()]
        # devices whose owner has no row (it stopped cleanly, or rows from before nodes existed)
        orphans = {(k or "(none)"): v for k, v in counts.items() if k not in known}
        return {"node_id": self.node_id, "node_timeout_s": self.node_timeout_s, "nodes": nodes,
                "devices_without_live_node": orphans, "devices": sum(counts.values()), "leases": leases}
