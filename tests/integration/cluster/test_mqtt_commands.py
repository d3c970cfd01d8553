"""Rollout commands over MQTT with two real nodes on one broker and one PostgreSQL database: each node connects
under its own client id (one shared id would make the broker drop one connection for the other) and the
commands arrive through a shared subscription, so one ``create`` makes one rollout and gets one reply, and an
action published once is carried out once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.support.broker import MOSQUITTO, Mosquitto
from tests.support.nodes import start_node
from tests.support.postgres import drop_pg_database, make_pg_database

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (apt-get install mosquitto)")


async def _messages(client: aiomqtt.Client, seconds: float) -> list[tuple[str, dict[str, Any]]]:
    """Everything that arrives within ``seconds``."""
    got: list[tuple[str, dict[str, Any]]] = []

    async def collect() -> None:
        async for message in client.messages:
            got.append((str(message.topic), json.loads(bytes(message.payload))))  # type: ignore[arg-type]

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), seconds)
    return got


async def test_one_command_one_rollout_one_reply(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    dsn = await make_pg_database()
    env = {"TINYMLAAS_MQTT__ENABLED": "true", "TINYMLAAS_MQTT__HOST": "127.0.0.1",
           "TINYMLAAS_MQTT__PORT": str(broker.port), "TINYMLAAS_MQTT__ALLOW_COMMANDS": "true"}
    a = await start_node(tmp_path / "a", dsn, env)
    b = await start_node(tmp_path / "b", dsn, env)
    devices = [SimulatedDevice(DeviceConfig(endpoint=f"mq-{n}")) for n in "ab"]
    try:
        assert a.token is not None
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="test-operator") as client:
            await client.subscribe("tinymlaas/#", qos=1)
            for device, node in zip(devices, (a, b), strict=True):  # each node's bridge publishes its device
                await device.start(f"coap://127.0.0.1:{node.coap_port}")
            seen = await _messages(client, 3.0)
            assert {t for t, _ in seen} >= {"tinymlaas/devices/mq-a/registered", "tinymlaas/devices/mq-b/registered"}

            command = {"model": "digits-cnn", "allow_empty": True, "filter": 'endpoint == "nobody"',
                       "correlation_id": "op-1"}
            await client.publish("tinymlaas/commands/rollouts/create", json.dumps(command), qos=1)
            replies = [m for t, m in await _messages(client, 3.0) if t == "tinymlaas/commands/rollouts/create/reply"]
            assert len(replies) == 1 and replies[0]["ok"] is True, replies
            rid = replies[0]["rollout_id"]
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {a.token}"}, timeout=30) as http:
                listed = (await http.get(f"{b.url}/api/rollouts")).json()
                assert [r["id"] for r in listed] == [rid]

                cancel = json.dumps({"correlation_id": "op-2"})
                await client.publish(f"tinymlaas/commands/rollouts/{rid}/cancel", cancel, qos=1)
                replies = [m for t, m in await _messages(client, 3.0) if t.endswith(f"{rid}/cancel/reply")]
                assert len(replies) == 1 and replies[0]["ok"] is True and replies[0]["state"] == "cancelled", replies
                audit = (await http.get(f"{a.url}/api/audit", params={"rollout": rid})).json()
                assert [e["action"] for e in audit].count("action.cancel") == 1
    finally:
        for device in devices:
            await device.stop(deregister=False)
        await a.kill()
        await b.kill()
        await drop_pg_database(dsn)
        broker.stop()
