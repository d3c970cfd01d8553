"""Which node runs a rollout, when several share one store: the holder of the lease ``rollout:<id>``.

A node runs a rollout's runner only while it holds that lease, renewing it every ``ttl/3``. A node that dies stops
renewing; once the lease has expired, any node's scan (also every ``ttl/3``) takes it, so a rollout is without a
leader for at most about ``ttl + ttl/3``. The conditional upsert of :class:`~lwm2m_server.store.sql.leases.
SqlLeaseRepository` lets exactly one of several racing nodes win an expired lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lwm2m_server.store.repositories import LeaseRepository


def lease_name(rollout_id: str) -> str:
    return f"rollout:{rollout_id}"


@dataclass(frozen=True)
class Claim:
    won: bool
    previous: str | None  # the other node that held the (expired) lease before, if one did


class RolloutLeadership:
    def __init__(self, leases: LeaseRepository, node_id: str, ttl_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._leases = leases
        self.node_id = node_id
        self.ttl_s = ttl_s
        self._clock = clock

    @property
    def interval_s(self) -> float:
        """How often a leader renews and every node scans for rollouts without a leader."""
        return self.ttl_s / 3

    async def holder(self, rollout_id: str) -> str | None:
        """The node whose lease on the rollout is still valid, if any."""
        name, now = lease_name(rollout_id), self._clock()
        for lease in await self._leases.leases():
            if lease.name == name and lease.expires_at > now:
                return lease.holder
        return None

    async def led_elsewhere(self) -> set[str]:
        """Rollout ids whose lease another node holds and has not let expire (a scan leaves them alone)."""
        now = self._clock()
        return {lease.name.removeprefix("rollout:") for lease in await self._leases.leases()
                if lease.name.startswith("rollout:") and lease.holder != self.node_id and lease.expires_at > now}

    async def acquire(self, rollout_id: str) -> Claim:
        """Take the lease if it is free, expired or already ours."""
        name = lease_name(rollout_id)
        before = [lease.holder for lease in await self._leases.leases() if lease.name == name]
        won = await self._leases.acquire(name, self.node_id, self.ttl_s, now=self._clock())
        previous = before[0] if before and before[0] != self.node_id else None
        return Claim(won, previous if won else None)

    async def renew(self, rollout_id: str) -> bool:
        """False once another node holds it (ours expired): our runner must stop."""
        return await self._leases.acquire(lease_name(rollout_id), self.node_id, self.ttl_s, now=self._clock())

    async def release(self, rollout_id: str) -> None:
        """Only our own lease is removed (a lease another node took over stays its)."""
        await self._leases.release(lease_name(rollout_id), self.node_id)
