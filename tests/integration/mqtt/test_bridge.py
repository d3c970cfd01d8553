"""The MQTT bridge against a real Mosquitto started on a free port, including a broker restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from lwm2m_server.config import MqttSettings
from lwm2m_server.mqtt_bridge import MqttBridge, parse_command_topic, topic_for
from tests.support.broker import MOSQUITTO, Mosquitto

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed")


@dataclass
class Ev:
    type: str
    endpoint: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


def test_topics() -> None:
    assert topic_for("t", Ev("registered", "dev-1")) == "t/devices/dev-1/registered"
    assert topic_for("t", Ev("expired", "dev-1")) == "t/devices/dev-1/deregistered"
    assert topic_for("t", Ev("notification", "d", {"path": "/5/0/3"})) == "t/devices/d/notify"
    assert topic_for("t", Ev("ota.state", "d")) == "t/devices/d/ota"
    assert topic_for("t", Ev("rollout.progress", None, {"rollout_id": 7})) == "t/rollouts/7/progress"
    assert topic_for("t", Ev("something", None)) is None
    assert parse_command_topic("t", "t/commands/rollouts/create") == ("create", None)
    assert parse_command_topic("t", "t/commands/rollouts/12/pause") == ("pause", "12")
    assert parse_command_topic("t", "t/commands/rollouts/12/explode") is None
    assert parse_command_topic("t", "x/commands/rollouts/create") is None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


class Feed:
    def __init__(self) -> None:
        self.q: asyncio.Queue[Ev] = asyncio.Queue()

    async def __aiter__(self) -> AsyncIterator[Ev]:  # type: ignore[override]
        while True:
            yield await self.q.get()


async def _collect(client: aiomqtt.Client, n: int, timeout: float = 10.0) -> list[tuple[str, dict[str, Any]]]:
    got: list[tuple[str, dict[str, Any]]] = []

    async def take() -> None:
        async for m in client.messages:
            assert isinstance(m.payload, bytes)
            got.append((str(m.topic), json.loads(m.payload)))
            if len(got) >= n:
                return

    await asyncio.wait_for(take(), timeout)
    return got


async def test_publishes_events_and_answers_commands(broker: Mosquitto) -> None:
    feed = Feed()
    calls: list[tuple[str, str | None, dict[str, Any]]] = []

    async def handler(action: str, rid: str | None, body: Mapping[str, Any]) -> Mapping[str, Any]:
        calls.append((action, rid, dict(body)))
        if body.get("model") == "bad":
            raise ValueError("unknown model 'bad'")
        return {"rollout_id": "42"} if action == "create" else {"state": "paused"}

    settings = MqttSettings(enabled=True, port=broker.port, topic_prefix="tml", allow_commands=True)
    bridge = MqttBridge(settings, feed.__aiter__(), handler)
    task = asyncio.create_task(bridge.run())
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="test-sub") as sub:
            await sub.subscribe("tml/devices/#", qos=1)
            await sub.subscribe("tml/rollouts/#", qos=1)
            await sub.subscribe("tml/commands/rollouts/+/reply", qos=1)
            await sub.subscribe("tml/commands/rollouts/+/+/reply", qos=1)
            await asyncio.wait_for(bridge.connected.wait(), 10)
            await feed.q.put(Ev("registered", "dev-1", {"lwm2m_version": "1.1"}))
            await feed.q.put(Ev("rollout.progress", None, {"rollout_id": "42", "confirmed": 3}))
            got = await _collect(sub, 2)
            assert (
                "tml/devices/dev-1/registered",
                {"type": "registered", "endpoint": "dev-1", "lwm2m_version": "1.1"},
            ) in got
            assert any(t == "tml/rollouts/42/progress" and p["confirmed"] == 3 for t, p in got)

            await sub.publish(
                "tml/commands/rollouts/create", json.dumps({"model": "digits-cnn", "correlation_id": "c-1"}), qos=1
            )
            await sub.publish("tml/commands/rollouts/42/pause", json.dumps({"correlation_id": "c-2"}), qos=1)
            await sub.publish("tml/commands/rollouts/create", json.dumps({"model": "bad", "correlation_id": "c-3"}))
            await sub.publish("tml/commands/rollouts/create", b"not json")
            replies = {p.get("correlation_id"): p for _, p in await _collect(sub, 4)}
            assert replies["c-1"] == {"ok": True, "rollout_id": "42", "correlation_id": "c-1"}
            assert replies["c-2"]["state"] == "paused"
            assert replies["c-3"]["ok"] is False and "unknown model" in replies["c-3"]["error"]
            assert replies[None]["ok"] is False
            assert [c[:2] for c in calls] == [("create", None), ("pause", "42"), ("create", None)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_broker_restart_loses_nothing_and_buffer_is_bounded(broker: Mosquitto) -> None:
    feed = Feed()
    settings = MqttSettings(enabled=True, port=broker.port, topic_prefix="tml", max_buffer=5)
    bridge = MqttBridge(settings, feed.__aiter__(), max_backoff_s=0.5)
    task = asyncio.create_task(bridge.run())
    try:
        # A persistent subscriber session survives the broker restart (Mosquitto persistence).
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="durable", clean_session=False) as sub:
            await sub.subscribe("tml/devices/#", qos=1)
        await asyncio.wait_for(bridge.connected.wait(), 10)

        broker.stop()
        for _ in range(100):
            if not bridge.connected.is_set():
                break
            await asyncio.sleep(0.05)
        assert not bridge.connected.is_set()
        for i in range(8):  # 8 events into a buffer of 5 while the broker is down
            await feed.q.put(Ev("updated", f"dev-{i}"))
        await asyncio.sleep(0.2)
        assert bridge.stats.dropped == 3 and bridge.stats.buffered == 5

        broker.start()
        await asyncio.wait_for(bridge.connected.wait(), 15)
        for _ in range(100):
            if bridge.stats.buffered == 0:
                break
            await asyncio.sleep(0.05)
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="durable", clean_session=False) as sub:
            got = await _collect(sub, 5, timeout=3)
        assert sorted(t for t, _ in got) == [f"tml/devices/dev-{i}/updated" for i in range(3, 8)]
        assert bridge.stats.connects >= 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
