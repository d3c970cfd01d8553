"""Three real nodes on one PostgreSQL database behind the sample nginx config, with a simulated fleet registering
through nginx (tests/support/cluster.py): every device is read through every node and the value is the
device's own; a node stopped (SIGTERM) or killed (SIGKILL) hands its devices over when they register again
through nginx (which stops sending to a node that does not answer), and a node that comes back is alive again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import Cluster, running_cluster
from tests.support.fleet import wait_for

pytestmark = pytest.mark.timeout(90)
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
