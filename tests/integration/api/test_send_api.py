"""LwM2M Send (device -> server POST /dp) over real UDP from the simulator: stored with its times, served by
``GET /api/devices/{ep}/data``, streamed as ``send`` SSE events and published on MQTT ``.../send``; bad
Sends get 4.xx and the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiocoap
import aiomqtt
import cbor2
import pytest
from aiocoap import POST, Code, Message

from lwm2m_server.config import MqttSettings
from lwm2m_server.mqtt_bridge import MqttBridge
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.device import SimulatedDevice
from tests.integration.api.conftest import Stack
from tests.integration.api.sse import sse
from tests.support.broker import MOSQUITTO, Mosquitto

P = LwM2MPath.parse
SENML_JSON, SENML_CBOR = 110, 112


async def raw_send(device: SimulatedDevice, payload: bytes, cf: int | None, *, context: Any = None) -> Code:
    """POST /dp from the device's own socket (the address it registered from), or from ``context``."""
    request = Message(code=POST, uri=f"{device.server_uri}/dp", payload=payload)
    if cf is not None:
        request.opt.content_format = cf
    ctx = context or device.context
    assert ctx is not None
    response = await asyncio.wait_for(ctx.request(request).response, 10.0)
    return response.code


async def test_simulator_send_reaches_rest_and_sse(stack: Stack) -> None:
    device = await stack.add_device("send-1", wait_profile=False)
    async with sse(stack.http, endpoint="send-1", type="send") as events:
        before = time.time()
        assert await device.send([P("/3/0/9"), P("/3/0/0")]) == Code.CHANGED
        frame = await events.next(event="send")
    values = frame.data["data"]["values"]
    assert [v["path"] for v in values] == ["/3/0/9", "/3/0/0"]
    assert values[1]["value"] == "TinyMLaaS Sim"
    assert all(before - 1 <= v["ts"] <= time.time() + 1 for v in values)

    response = await stack.http.get("/api/devices/send-1/data")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {i["path"]: i["value"] for i in items} == {"/3/0/9": values[0]["value"], "/3/0/0": "TinyMLaaS Sim"}
    only = (await stack.http.get("/api/devices/send-1/data", params={"path": "/3/0/0"})).json()["items"]
    assert [i["path"] for i in only] == ["/3/0/0"]
    assert (await stack.http.get("/api/devices/send-1/data", params={"path": "/3/x"})).status_code == 400


async def test_historical_values_keep_their_times(stack: Stack) -> None:
    device = await stack.add_device("send-2", wait_profile=False)
    pack = [
        {"bn": "/3/0/", "bt": 1_700_000_000, "n": "9", "v": 80},
        {"n": "9", "v": 79, "t": 60},
        {"n": "9", "v": 78, "t": 120},
        {"bn": "/3303/0/", "n": "5700", "v": 21.5},  # an object the registry does not model: typed by the wire
    ]
    assert await raw_send(device, json.dumps(pack).encode(), SENML_JSON) == Code.CHANGED
    items = (await stack.http.get("/api/devices/send-2/data", params={"path": "/3/0/9"})).json()["items"]
    assert [(i["ts"], i["value"]) for i in items] == [(1_700_000_000, 80), (1_700_000_060, 79), (1_700_000_120, 78)]
    window = {"path": "/3/0/9", "since": 1_700_000_030, "until": 1_700_000_100}
    assert [i["value"] for i in (await stack.http.get("/api/devices/send-2/data", params=window)).json()["items"]] == [
        79
    ]
    other = (await stack.http.get("/api/devices/send-2/data", params={"path": "/3303"})).json()["items"]
    assert [(i["path"], i["value"]) for i in other] == [("/3303/0/5700", 21.5)]


@pytest.mark.parametrize(
    ("payload", "cf", "code"),
    [
        (cbor2.dumps([{-2: "/3/0/9", 2: 1}, {-2: "/3/0/9", 2: 2}]), SENML_CBOR, Code.BAD_REQUEST),  # duplicate
        (b"\xff\x00", SENML_CBOR, Code.BAD_REQUEST),
        (b'[{"n":"/3/0/0","v":1}]', SENML_JSON, Code.BAD_REQUEST),  # v for a String resource
        (b"[]", SENML_JSON, Code.BAD_REQUEST),
        (b'[{"n":"/3/0/9","v":1}]', None, Code.BAD_REQUEST),  # no Content-Format
        (b"\xc1\x09\x05", 11542, Code.UNSUPPORTED_CONTENT_FORMAT),  # TLV is not a Send format
    ],
)
async def test_bad_sends_are_refused_and_the_server_keeps_running(
    stack: Stack, payload: bytes, cf: int | None, code: Code
) -> None:
    device = await stack.add_device("send-bad", wait_profile=False)
    assert await raw_send(device, payload, cf) == code
    assert (await stack.http.get("/api/devices/send-bad/data")).json()["items"] == []
    assert await device.send([P("/3/0/9")]) == Code.CHANGED
    assert len((await stack.http.get("/api/devices/send-bad/data")).json()["items"]) == 1


async def test_send_from_an_unregistered_address_is_4_04(stack: Stack) -> None:
    device = await stack.add_device("send-3", wait_profile=False)
    stranger = await aiocoap.Context.create_client_context()
    try:
        payload = cbor2.dumps([{-2: "/3/0/9", 2: 1}])
        assert await raw_send(device, payload, SENML_CBOR, context=stranger) == Code.NOT_FOUND
    finally:
        await stranger.shutdown()
    assert (await stack.http.get("/api/devices/send-3/data")).json()["items"] == []


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed")
async def test_send_is_published_on_mqtt(stack: Stack, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    settings = MqttSettings(enabled=True, port=broker.port, topic_prefix="tml")
    bridge = MqttBridge(settings, stack.server.events.subscribe(), _no_commands)
    task = asyncio.create_task(bridge.run())
    try:
        device = await stack.add_device("send-mqtt", wait_profile=False)
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="send-sub") as sub:
            await sub.subscribe("tml/devices/send-mqtt/send", qos=1)
            await asyncio.wait_for(bridge.connected.wait(), 10)
            assert await device.send([P("/3/0/9")], content_format=SENML_JSON) == Code.CHANGED
            message = await asyncio.wait_for(anext(aiter(sub.messages)), 10)
        assert str(message.topic) == "tml/devices/send-mqtt/send"
        assert isinstance(message.payload, bytes)
        body = json.loads(message.payload)
        assert body["type"] == "send" and [v["path"] for v in body["values"]] == ["/3/0/9"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        broker.stop()


async def _no_commands(action: str, rollout_id: str | None, body: Any) -> dict[str, Any]:
    raise ValueError("no commands in this test")


async def test_a_send_wakes_a_queue_mode_device_for_its_queued_requests(tmp_path: Path) -> None:
    from tests.integration.api.conftest import running_stack, wait_for

    async with running_stack(tmp_path, queue_mode_window_s=0.8) as stack:
        device = await stack.add_device("send-q", binding="UQ", queue_awake_s=1.0, queue_sleep_s=60.0)

        async def asleep() -> bool:
            return bool((await stack.http.get("/api/devices/send-q")).json()["sleeping"])

        await wait_for(asleep, 5.0, "send-q to be reported sleeping")
        queued = asyncio.create_task(stack.http.get("/api/devices/send-q/3/0/0", params={"timeout": "10"}))

        async def in_queue() -> bool:
            return len(stack.server.queue.queued("send-q")) == 1

        await wait_for(in_queue, 5.0, "the read to be queued")
        assert await device.send([P("/3/0/9")]) == Code.CHANGED  # the uplink, long before the next Update
        response = await asyncio.wait_for(queued, 10)
        assert response.status_code == 200 and response.json()["value"] == "TinyMLaaS Sim"
