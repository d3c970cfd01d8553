"""Rollout leadership over the lease table on both backends, with a fake clock: one leader at a time, a renewal
keeps it, an expired lease is taken over (naming the old holder), a lost lease is reported, release is own-only."""

from __future__ import annotations

from lwm2m_server.rollouts.leadership import RolloutLeadership, lease_name
from tests.unit.store.conftest import StoreFactory


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_one_leader_renewal_takeover_and_release(make_store: StoreFactory) -> None:
    first, second = await make_store(), await make_store()  # two nodes on the same data
    clock = FakeClock()
    a = RolloutLeadership(first.leases, "node-a", 9.0, clock)
    b = RolloutLeadership(second.leases, "node-b", 9.0, clock)
    assert a.interval_s == 3.0

    claim = await a.acquire("r1")
    assert claim.won and claim.previous is None
    assert not (await b.acquire("r1")).won
    assert await a.holder("r1") == "node-a" and await b.holder("r1") == "node-a"
    clock.now += 8.0
    assert await a.renew("r1")  # renewed: valid until 1017
    clock.now += 8.0
    assert not (await b.acquire("r1")).won and await b.holder("r1") == "node-a"
    clock.now += 1.5  # a stopped renewing: expired at 1017
    assert await b.holder("r1") is None
    taken = await b.acquire("r1")
    assert taken.won and taken.previous == "node-a"
    assert not await a.renew("r1")  # a learns it is no longer the leader
    await a.release("r1")  # not a's: stays b's
    assert [(x.name, x.holder) for x in await first.leases.leases()] == [(lease_name("r1"), "node-b")]
    again = await b.acquire("r1")  # re-acquiring one's own lease is a renewal, no takeover
    assert again.won and again.previous is None
    await b.release("r1")
    assert await first.leases.leases() == []


async def test_leases_of_different_rollouts_are_independent(make_store: StoreFactory) -> None:
    store = await make_store()
    clock = FakeClock()
    a = RolloutLeadership(store.leases, "node-a", 10.0, clock)
    b = RolloutLeadership(store.leases, "node-b", 10.0, clock)
    assert (await a.acquire("r1")).won and (await b.acquire("r2")).won
    assert not (await a.acquire("r2")).won and not (await b.acquire("r1")).won
    assert {x.name: x.holder for x in await store.leases.leases()} == {"rollout:r1": "node-a", "rollout:r2": "node-b"}


async def test_led_elsewhere_lists_valid_foreign_leases_only(make_store: StoreFactory) -> None:
    store = await make_store()
    clock = FakeClock()
    a = RolloutLeadership(store.leases, "node-a", 10.0, clock)
    b = RolloutLeadership(store.leases, "node-b", 10.0, clock)
    await a.acquire("r1")
    await b.acquire("r2")
    await store.leases.acquire("other:thing", "node-b", 10.0, now=clock())  # not a rollout's lease
    assert await a.led_elsewhere() == {"r2"} and await b.led_elsewhere() == {"r1"}
    clock.now += 11.0
    assert await a.led_elsewhere() == set()  # expired: a scan may take it
