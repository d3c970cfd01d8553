"""The bridge against a private Mosquitto with a password file (and TLS): login from config, a wrong
password never connects, and commands are ignored unless ``allow_commands``."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from lwm2m_server.config import MqttSettings
from lwm2m_server.mqtt_bridge import MqttBridge
from tests.integration.mqtt.test_bridge import Ev, Feed, _collect
from tests.support.broker import MOSQUITTO, MOSQUITTO_PASSWD, Mosquitto
from tests.support.tlscerts import make_ca_and_server_cert

pytestmark = pytest.mark.skipif(MOSQUITTO is None or MOSQUITTO_PASSWD is None, reason="mosquitto not installed")
USERS = {"tinymlaas": "s3cret-bridge", "operator": "op-pw"}


async def _run_bridge(settings: MqttSettings, handler: Any = None) -> tuple[MqttBridge, Feed, asyncio.Task[None]]:
    feed = Feed()
    bridge = MqttBridge(settings, feed.__aiter__(), handler, max_backoff_s=0.5)
    return bridge, feed, asyncio.create_task(bridge.run())


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_password_login_and_commands_off_by_default(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, users=USERS)
    broker.start()
    calls: list[str] = []

    async def handler(action: str, rid: str | None, body: Mapping[str, Any]) -> Mapping[str, Any]:
        calls.append(action)
        return {}

    try:
        wrong, _, wrong_task = await _run_bridge(MqttSettings(port=broker.port, username="tinymlaas", password="no"))
        try:
            await asyncio.sleep(1.5)  # several connection attempts, all refused
            assert not wrong.stats.connected and wrong.stats.connects == 0
            assert wrong.stats.last_error and "authori" in wrong.stats.last_error.lower()
        finally:
            await _stop(wrong_task)

        settings = MqttSettings(port=broker.port, topic_prefix="sec", username="tinymlaas", password="s3cret-bridge")
        assert settings.allow_commands is False
        bridge, feed, task = await _run_bridge(settings, handler)
        try:
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="op", username="operator",
                                      password="op-pw") as sub:  # fmt: skip
                await sub.subscribe("sec/#", qos=1)
                await asyncio.wait_for(bridge.connected.wait(), 10)
                await sub.publish("sec/commands/rollouts/create", json.dumps({"model": "kws", "correlation_id": "x"}),
                                  qos=1)  # fmt: skip
                await feed.q.put(Ev("registered", "dev-9"))  # a barrier: the bridge's publication comes after
                got = await _collect(sub, 2)
                topics = [t for t, _ in got]
                assert "sec/devices/dev-9/registered" in topics
                assert "sec/commands/rollouts/create/reply" not in topics
            assert calls == [] and bridge.stats.commands == 0
        finally:
            await _stop(task)
        with pytest.raises(aiomqtt.MqttError):  # and the broker really refuses anonymous clients
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="anon", timeout=3):
                pass
    finally:
        broker.stop()


async def test_tls_with_the_ca_from_config(tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    broker = Mosquitto(tmp_path, users=USERS, tls=(ca, cert, key))
    broker.start()
    try:
        plain = MqttSettings(port=broker.port, username="tinymlaas", password="s3cret-bridge")
        untrusted, _, untrusted_task = await _run_bridge(plain.model_copy(update={"tls": True}))
        try:
            await asyncio.sleep(1.0)  # system CAs do not know the test CA: the handshake fails
            assert untrusted.stats.connects == 0 and untrusted.stats.last_error
        finally:
            await _stop(untrusted_task)

        settings = plain.model_copy(update={"ca_file": str(ca), "topic_prefix": "tls"})
        bridge, feed, task = await _run_bridge(settings)
        try:
            context = ssl.create_default_context(cafile=str(ca))
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="op", username="operator",
                                      password="op-pw", tls_context=context) as sub:  # fmt: skip
                await sub.subscribe("tls/#", qos=1)
                await asyncio.wait_for(bridge.connected.wait(), 10)
                await feed.q.put(Ev("registered", "dev-t"))
                got = await _collect(sub, 1)
                assert got[0][0] == "tls/devices/dev-t/registered"
        finally:
            await _stop(task)
    finally:
        broker.stop()
