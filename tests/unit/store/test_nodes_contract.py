"""The nodes repository and registration ownership, on both backends (``conftest.make_store``); the cross-node
ownership rules (reload own rows only, delete only while owning) are PostgreSQL's: a SQLite file has one node."""

from __future__ import annotations

import pytest

from lwm2m_server.registration import Registration
from lwm2m_server.store.repositories import NodeRow
from tests.unit.store.conftest import StoreFactory


def _reg(ep: str, reg_id: str, at: float = 1000.0) -> Registration:
    return Registration(ep, reg_id, "127.0.0.1", 5683, 300, "1.1", "U", False, registered_at=at, updated_at=at,
                        last_seen=at)


async def test_heartbeat_upserts_and_counts_devices_per_owner(make_store: StoreFactory) -> None:
    a = await make_store(node_id="node-a")
    await a.nodes.heartbeat(NodeRow("node-a", 10.0, 11.0, {"coap_port": 5683}))
    await a.nodes.heartbeat(NodeRow("node-b", 10.0, 12.0, {}))
    await a.nodes.heartbeat(NodeRow("node-a", 10.0, 15.5, {"coap_port": 5684}))  # the next beat
    assert await a.nodes.nodes() == [NodeRow("node-a", 10.0, 15.5, {"coap_port": 5684}),
                                     NodeRow("node-b", 10.0, 12.0, {})]
    for i in range(3):
        await a.save_registration(_reg(f"d{i}", f"r{i}"))
    assert await a.nodes.device_counts() == {"node-a": 3}
    assert await a.nodes.owner("d1") == "node-a"
    assert await a.nodes.owner("nobody") is None
    await a.nodes.remove("node-b")
    assert [n.node_id for n in await a.nodes.nodes()] == ["node-a"]


async def test_store_without_node_id_leaves_owner_empty(make_store: StoreFactory) -> None:
    store = await make_store()
    await store.save_registration(_reg("d", "r"))
    assert await store.nodes.device_counts() == {None: 1}
    assert [r.endpoint for r in await store.load_registrations()] == ["d"]


@pytest.fixture
def pg_only(request: pytest.FixtureRequest) -> None:
    if "postgres" not in request.node.callspec.id:
        pytest.skip("cross-node ownership: PostgreSQL only (a SQLite store has exactly one node)")


async def test_ownership_moves_and_only_the_owner_deletes(make_store: StoreFactory, pg_only: None) -> None:
    a = await make_store(node_id="node-a")
    b = await make_store(node_id="node-b")
    await a.save_registration(_reg("dev", "r1"))
    await a.save_registration(_reg("stays", "r2"))
    await a.flush()
    assert await b.nodes.owner("dev") == "node-a"
    await b.save_registration(_reg("dev", "r9", at=1001.0))  # the device registered again, through b
    await b.flush()
    assert await a.nodes.owner("dev") == "node-b"
    await a.save_registration(_reg("dev", "r1"))  # a's stale copy written again (in-flight batch): ignored
    await a.flush()
    assert await a.nodes.owner("dev") == "node-b"
    await a.delete_registration("dev")  # a's stale copy expires: the row is b's now, it stays
    await a.flush()
    assert await a.nodes.owner("dev") == "node-b"
    assert {r.endpoint for r in await a.load_registrations()} == {"stays"}  # a reloads only its own
    assert {r.endpoint: r.reg_id for r in await b.load_registrations()} == {"dev": "r9"}
    await b.save_registration(_reg("dev", "r9", at=1001.0))  # an Update through the owner: applies
    await a.save_registration(_reg("other", "r9", at=1002.0))  # a reused reg_id replaces its old holder
    await a.flush()
    await b.flush()
    assert await a.nodes.owner("dev") is None and await a.nodes.owner("other") == "node-a"
    await b.save_registration(_reg("dev", "r7", at=1003.0))
    await b.delete_registration("dev")  # the owner de-registers it: gone
    await b.flush()
    assert await a.nodes.device_counts() == {"node-a": 2}


async def test_sweep_deletes_only_expired_rows_of_dead_nodes(make_store: StoreFactory) -> None:
    store = await make_store(node_id="live")
    await store.nodes.heartbeat(NodeRow("live", 0.0, 2000.0, {}))
    await store.nodes.heartbeat(NodeRow("dead", 0.0, 1000.0, {}))
    await store.save_registration(_reg("mine-expired", "r1"))  # expires at 1300 (lifetime 300)
    for name, owner in (("dead-expired", "dead"), ("dead-fresh", "dead"), ("gone-expired", "never-a-node")):
        other = await make_store(node_id=owner)
        await other.save_registration(_reg(name, f"id-{name}", at=1000.0 if "expired" in name else 1950.0))
        await other.flush()
    assert await store.nodes.sweep_expired(alive_since=1990.0, now=2001.0, grace_s=10.0) == 2
    counts = await store.nodes.device_counts()
    assert counts == {"live": 1, "dead": 1}  # the live node expires its own rows itself
    assert await store.nodes.sweep_expired(alive_since=1990.0, now=2001.0, grace_s=10.0) == 0
