"""Events across nodes. Three real nodes behind nginx: an SSE client on node C sees a device registering on node
A (marked with A's node id), a notification from a device on B and B's OTA job events, each once (no relay
loops), while A's own stream shows its local event unmarked; every node's MQTT bridge publishes A's event (B and
C marked with A's id) unless ``relay_mqtt`` is off. Then the relay itself on the real PostgreSQL
notifier: a burst is packed several events per NOTIFY, an event over the payload limit is sent truncated
(counted), a full buffer drops its oldest events (counted), and relayed events reach only remote subscribers,
never the bus's sinks (the event log) or local services."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from lwm2m_server.cluster.events import EventRelay
from lwm2m_server.events import Event, EventBus
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.store.postgres.notify import PgNotifier
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.integration.api.sse import SseReader, sse
from tests.support.broker import MOSQUITTO, Mosquitto
from tests.support.cluster import running_cluster
from tests.support.postgres import drop_pg_database, make_pg_database

pytestmark = pytest.mark.timeout(90)


async def _ota_frame(stream: SseReader, endpoint: str, timeout: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        frame = await stream.next(deadline - loop.time(), endpoint=endpoint)
        if frame.event.startswith("ota."):
            return frame.data
    raise AssertionError(f"no ota.* event for {endpoint} within {timeout} s")


async def test_sse_on_one_node_sees_events_of_the_others(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as cluster:
        a, b, c = cluster.nodes
        async with cluster.http(c) as http_c, sse(http_c) as at_c, cluster.http(a) as http_a, sse(http_a) as at_a:
            dev_a = SimulatedDevice(DeviceConfig(endpoint="ev-a"))
            dev_b = SimulatedDevice(DeviceConfig(endpoint="ev-b", accept_raw_firmware=True))
            cluster.devices.extend([dev_a, dev_b])
            await dev_a.start(f"coap://127.0.0.1:{a.coap_port}")  # straight at A, not through nginx
            remote = await at_c.next(10, event="registered", endpoint="ev-a")
            assert remote.data["node"] == a.node_id
            local = await at_a.next(10, event="registered", endpoint="ev-a")
            assert "node" not in local.data and local.data["data"] == remote.data["data"]

            await dev_b.start(f"coap://127.0.0.1:{b.coap_port}")
            async with cluster.http(b) as http_b:
                r = await http_b.post("/api/devices/ev-b/3/0/9/observe", params={"timeout": 10})
                assert r.status_code == 200, r.text
                assert dev_b.objects is not None
                dev_b.objects.set(LwM2MPath(3, 0, 9), 42)
                note = await at_c.next(10, event="notification", endpoint="ev-b")
                assert note.data["node"] == b.node_id and note.data["data"]["values"]["/3/0/9"] == 42, note.data

                image = b"FWIMG\x00" + os.urandom(2000)
                up = await http_b.post("/api/packages", params={"kind": "firmware", "version": "2"}, content=image)
                assert up.status_code == 201, up.text
                started = await http_b.post("/api/devices/ev-b/update",
                                            json={"firmware": up.json()["sha256"], "method": "push"})
                assert started.status_code == 202, started.text
            ota = await _ota_frame(at_c, "ev-b", 20)
            assert ota["node"] == b.node_id and ota["data"]["job"] == started.json()["job"], ota  # type: ignore[index]

            await asyncio.sleep(1.0)  # anything looping between nodes would have come round by now
            again = [f for f in at_c.drain() if f.event == "registered" and f.data["endpoint"] == "ev-a"]
            assert again == []  # C saw A's registration exactly once
            assert not any(f.data.get("node") == a.node_id for f in at_a.drain())  # A never hears itself


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed (apt-get install mosquitto)")
@pytest.mark.parametrize("relay_mqtt", [True, False])
async def test_mqtt_bridges_see_other_nodes_events(tmp_path: Path, relay_mqtt: bool) -> None:
    (tmp_path / "mqtt").mkdir()
    broker = Mosquitto(tmp_path / "mqtt")
    broker.start()
    env = {"TINYMLAAS_MQTT__ENABLED": "true", "TINYMLAAS_MQTT__PORT": str(broker.port),
           "TINYMLAAS_CLUSTER__RELAY_MQTT": str(relay_mqtt).lower()}
    try:
        async with running_cluster(tmp_path, env=env) as cluster, \
                aiomqtt.Client("127.0.0.1", broker.port, identifier="cluster-test") as sub:
            await sub.subscribe("tinymlaas/devices/ev-m/registered", qos=1)
            a = cluster.nodes[0]
            device = SimulatedDevice(DeviceConfig(endpoint="ev-m"))
            cluster.devices.append(device)
            await asyncio.sleep(1.0)  # every node's bridge is connected
            await device.start(f"coap://127.0.0.1:{a.coap_port}")
            got: list[dict[str, Any]] = []

            async def take() -> None:
                async for message in sub.messages:
                    assert isinstance(message.payload, bytes)
                    got.append(json.loads(message.payload))

            with pytest.raises(TimeoutError):
                await asyncio.wait_for(take(), 3.0)
        # every node publishes to the one broker: A its own event, B and C the relayed one (when relay_mqtt)
        origins = sorted(str(m.get("node")) for m in got)
        assert origins == (sorted([a.node_id, a.node_id, "None"]) if relay_mqtt else ["None"]), got
    finally:
        broker.stop()


async def test_relay_packs_truncates_drops_and_keeps_remote_events_from_sinks() -> None:
    dsn = await make_pg_database()
    here, there = EventBus(), EventBus()
    sunk: list[Event] = []
    there.add_sink(sunk.append)
    sender = EventRelay(here, PgNotifier(dsn), "node-here", batch_ms=20, buffer=300, payload_limit=2000)
    receiver = EventRelay(there, PgNotifier(dsn), "node-there", batch_ms=20)
    try:
        await receiver.start()
        await sender.start()
        with there.subscribe(remote=True, maxsize=10_000) as remote, there.subscribe() as local_only:
            for i in range(200):
                here.emit("registered", f"burst-{i}", lwm2m_version="1.1")
            here.emit("send", "huge", values={"blob": "x" * 5000})
            got = [await remote.get(10) for _ in range(201)]
            assert [e.endpoint for e in got[:200]] == [f"burst-{i}" for i in range(200)]  # in order, none lost
            assert all(e.node == "node-here" for e in got)
            assert got[200].data == {"truncated": True, "bytes": got[200].data["bytes"]}
            assert got[200].data["bytes"] > 5000 and sender.stats.truncated == 1
            # the sender counts a batch once its NOTIFY returned, which can be after the receiver got it
            for _ in range(100):
                if sender.stats.events_sent == 201:
                    break
                await asyncio.sleep(0.01)
            assert sender.stats.events_sent == 201 and 201 / sender.stats.notifies_sent > 10  # batched
            with pytest.raises(TimeoutError):
                await local_only.get(0.3)  # relayed events are for remote subscribers only
            assert sunk == []  # nor for sinks (the receiving node's event log)

            for i in range(400):  # more than the buffer in one go (no await: the relay cannot send meanwhile)
                here.emit("updated", f"flood-{i}")
            assert sender.stats.dropped == 100
            flood = [await remote.get(10) for _ in range(300)]
            assert [e.endpoint for e in flood] == [f"flood-{i}" for i in range(100, 400)]  # the oldest went
            assert receiver.stats.events_received == 501
    finally:
        await sender.stop()
        await receiver.stop()
        await drop_pg_database(dsn)
