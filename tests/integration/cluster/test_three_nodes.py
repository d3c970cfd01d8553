"""Three real nodes on one PostgreSQL database behind the sample nginx config, with a simulated fleet registering
through nginx (tests/support/cluster.py): every device is read through every node and the value is the
device's own; a node stopped (SIGTERM) or killed (SIGKILL) hands its devices over when they register again
through nginx (which stops sending to a node that does not answer), and a node that comes back is alive again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, running_cluster
from tests.support.fleet import wait_for

pytestmark = pytest.mark.timeout(120)
FLEET = 30


async def _read_serial(cluster: Cluster, node_index: int, endpoint: str) -> tuple[int, str]:
    async with cluster.http(cluster.nodes[node_index]) as http:
        r = await http.get(f"/api/devices/{endpoint}/3/0/2")
    return r.status_code, r.text


async def _all_registered(cluster: Cluster, total: int) -> bool:
    return sum((await cluster.device_counts()).values()) == total


async def test_every_device_read_through_every_node(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as cluster:
        devices = await cluster.start_fleet(FLEET)
        await wait_for(lambda: _all_registered(cluster, FLEET), 10, "every registration committed")
        counts = await cluster.device_counts()
        assert all(counts.get(n.node_id, 0) > 0 for n in cluster.nodes), counts  # nginx spread them
        owners = await cluster.owners()
        assert set(owners) == {d.endpoint for d in devices}
        for device in devices:
            for i in range(len(cluster.nodes)):
                status, body = await _read_serial(cluster, i, device.endpoint)
                assert status == 200, (device.endpoint, i, body)
                assert device.config.serial in body, (device.endpoint, i, body)


async def _moved_off(cluster: Cluster, victim_id: str, endpoints: set[str]) -> bool:
    owners = await cluster.owners()
    return endpoints <= owners.keys() and all(owners[ep].node_id != victim_id for ep in endpoints)


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
async def test_a_node_down_hands_its_devices_over_and_comes_back(tmp_path: Path, how: str) -> None:
    async with running_cluster(tmp_path) as cluster:
        # Updates every second; an Update nobody answers fails after 3 s (the simulator's default is 15 s)
        devices = await cluster.start_fleet(FLEET, update_interval_s=1.0, lifetime=60, uplink_timeout_s=3.0)
        await wait_for(lambda: _all_registered(cluster, FLEET), 10, "every registration committed")
        owners = await cluster.owners()
        victim = cluster.nodes[1]
        victim_id = victim.node_id
        moved = {ep for ep, node in owners.items() if node is victim}
        assert moved, "nginx gave the victim no device"
        t0 = asyncio.get_running_loop().time()
        await (cluster.kill(victim) if how == "sigkill" else cluster.stop(victim))
        # ~28 s alone (devices retry their Update 4 times before nginx moves them), 38 s in the full suite, over
        # 45 s once when the machine was shared: the handover is asserted, its time printed
        await wait_for(lambda: _moved_off(cluster, victim_id, moved), 90, "the stopped node's devices re-registered")
        print(f"handover after {how}: {asyncio.get_running_loop().time() - t0:.1f} s for {len(moved)} devices")
        await wait_for(lambda: _victim_counted(cluster, victim_id, alive=False), 10, "the cluster view")
        counts = await cluster.device_counts()
        assert sum(counts.values()) == FLEET and counts.get(victim_id, 0) == 0, counts
        for device in devices:
            if device.endpoint in moved:
                for i in (0, 2):
                    status, body = await _read_serial(cluster, i, device.endpoint)
                    assert status == 200 and device.config.serial in body, (device.endpoint, i, body)
        back = await cluster.restart(victim)
        assert back.node_id == victim_id
        await wait_for(lambda: _victim_counted(cluster, victim_id, alive=True), 10, "the restarted node alive")


async def _victim_counted(cluster: Cluster, victim_id: str, *, alive: bool) -> bool:
    """The cluster view shows the victim alive (or not: dead, or gone after a clean stop) and, when not, with
    no device left on it."""
    status = await cluster.status()
    node = next((n for n in status["nodes"] if n["node_id"] == victim_id), None)
    if alive:
        return node is not None and bool(node["alive"])
    orphaned = status["devices_without_live_node"].get(victim_id, 0)
    return (node is None or (not node["alive"] and node["devices"] == 0)) and orphaned == 0
