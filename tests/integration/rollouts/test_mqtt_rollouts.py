"""Rollouts over MQTT: a command on ``tinymlaas/commands/rollouts/create`` against a private Mosquitto creates and
starts a rollout on the Application; the reply carries the correlation id; progress arrives on
``tinymlaas/rollouts/{id}/progress``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.integration.rollouts.conftest import M4F, running_stack, wait_for
from tests.support.broker import MOSQUITTO, Mosquitto

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed")


async def _next(messages: Any, topic: str, timeout: float, **match: Any) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        async for message in messages:
            if aiomqtt.Topic(topic).matches(message.topic) or str(message.topic) == topic:
                body = json.loads(message.payload)
                if all(body.get(k) == v for k, v in match.items()):
                    return dict(body)
        raise AssertionError("MQTT message stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_create_over_mqtt_and_progress(tmp_path: Path, compile_cache: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        mqtt = {"enabled": True, "host": "127.0.0.1", "port": broker.port, "allow_commands": True}
        async with running_stack(tmp_path / "data", compile_cache, mqtt=mqtt) as stack:
            await stack.upload_kws("kws")
            await stack.add_device("mq-1", M4F)
            await stack.add_device("mq-2", M4F)
            assert stack.app.mqtt is not None
            await asyncio.wait_for(stack.app.mqtt.connected.wait(), 10)
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="test-operator") as client:
                await client.subscribe("tinymlaas/commands/rollouts/#", qos=1)
                await client.subscribe("tinymlaas/rollouts/+/progress", qos=1)
                command = {"model": "kws", "filter": 'endpoint in ["mq-1", "mq-2"]', "start": True,
                           "correlation_id": "op-42"}  # fmt: skip
                await client.publish("tinymlaas/commands/rollouts/create", json.dumps(command), qos=1)
                reply = await _next(client.messages, "tinymlaas/commands/rollouts/create/reply", 15)
                assert reply["ok"] is True and reply["correlation_id"] == "op-42", reply
                rid = reply["rollout_id"]
                progress = await _next(client.messages, f"tinymlaas/rollouts/{rid}/progress", 30, state="completed")
                assert progress["type"] == "rollout.progress" and progress["counts"] == {"confirmed": 2}

                # a bad command gets an error reply with its correlation id; an action on the rollout works too
                bad = {"model": "kws", "waves": "nope", "correlation_id": "op-43"}
                await client.publish("tinymlaas/commands/rollouts/create", json.dumps(bad), qos=1)
                reply = await _next(client.messages, "tinymlaas/commands/rollouts/create/reply", 15,
                                    correlation_id="op-43")  # fmt: skip
                assert reply["ok"] is False and "waves" in reply["error"]
                pause = json.dumps({"correlation_id": "op-44"})
                await client.publish(f"tinymlaas/commands/rollouts/{rid}/pause", pause, qos=1)
                reply = await _next(client.messages, f"tinymlaas/commands/rollouts/{rid}/pause/reply", 15)
                assert reply == {"ok": False, "error": reply["error"], "correlation_id": "op-44"}
                assert "cannot pause a rollout that is completed" in reply["error"]

            async def rest_sees_it() -> bool:
                return (await stack.rollout(rid))["state"] == "completed"

            await wait_for(rest_sees_it, 5, "the MQTT-created rollout over REST")
            audit = (await stack.http.get("/api/audit", params={"rollout": rid})).json()
            assert [a["actor"] for a in audit[:2]] == ["mqtt", "mqtt"]
    finally:
        broker.stop()
