"""Read-, Write- and Observe-Composite through the REST API against the simulator over real UDP."""

from __future__ import annotations

import asyncio

from lwm2m_server.protocol.paths import LwM2MPath
from tests.integration.api.conftest import Stack
from tests.integration.api.sse import sse

P = LwM2MPath.parse


async def test_read_and_write_composite(stack: Stack) -> None:
    device = await stack.add_device("comp-1", wait_profile=False)
    body = {"/3/0/14": "+02:00", "/1/0/1": 321, "/3/0/15": "Europe/Helsinki"}
    response = await stack.http.put("/api/devices/comp-1/composite", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"endpoint": "comp-1", "paths": ["/1/0/1", "/3/0/14", "/3/0/15"],
                               "operation": "write-composite"}  # fmt: skip
    assert device.objects is not None and device.objects.get(P("/1/0/1")) == 321
    assert device.objects.get(P("/3/0/14")) == "+02:00"

    response = await stack.http.post("/api/devices/comp-1/composite/read",
                                     json={"paths": ["/3/0/14", "/1/0/1", "/3/0/15"]})  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["content"] == body


async def test_write_composite_errors(stack: Stack) -> None:
    await stack.add_device("comp-2", wait_profile=False)
    url = "/api/devices/comp-2/composite"
    for bad in ({}, {"/3/0": 1}, {"/3/x/1": 1}, {"/1/0/1": "not a number"}, [1]):
        response = await stack.http.put(url, json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert set(response.json()) == {"error", "message"}
    response = await stack.http.put(url, json={"/3/0/0": "read-only manufacturer"})
    assert response.status_code == 502 and response.json()["error"] == "4.05"  # the device refuses
    assert (await stack.http.put("/api/devices/nobody/composite", json={"/1/0/1": 1})).status_code == 404
    read = await stack.http.post("/api/devices/comp-2/composite/read", json={"paths": ["/3/0/0", "/3/0/0"]})
    assert read.status_code == 400


async def test_lwm2m_1_0_device_has_no_composite(stack: Stack) -> None:
    await stack.add_device("comp-10", version="1.0", wait_profile=False)
    response = await stack.http.put("/api/devices/comp-10/composite", json={"/1/0/1": 300})
    assert response.status_code == 502 and response.json()["error"] == "unsupported"


async def test_observe_composite_notifies_and_cancels(stack: Stack) -> None:
    device = await stack.add_device("comp-3", wait_profile=False)
    assert device.objects is not None
    assert (await stack.http.put("/api/devices/comp-3/composite", json={"/3/0/14": "+01:00"})).status_code == 200
    async with sse(stack.http, endpoint="comp-3", type="notification") as events:
        response = await stack.http.post("/api/devices/comp-3/composite/observe",
                                         json={"paths": ["/1/0/6", "/3/0/14"]})  # fmt: skip
        assert response.status_code == 200, response.text
        assert set(response.json()["content"]) == {"/1/0/6", "/3/0/14"}

        write = await stack.http.put("/api/devices/comp-3/composite", json={"/1/0/6": True, "/3/0/14": "+03:00"})
        assert write.status_code == 200, write.text
        frame = await events.next(event="notification", path="/")
        assert frame.data["data"]["paths"] == ["/1/0/6", "/3/0/14"]
        assert frame.data["data"]["values"]["/3/0/14"] in ("+03:00", device.objects.get(P("/3/0/14")))
        [obs] = stack.server.client.composite_observations("comp-3")
        for _ in range(50):
            if obs.value == {P("/1/0/6"): True, P("/3/0/14"): "+03:00"}:
                break
            await asyncio.sleep(0.05)
        assert obs.value == {P("/1/0/6"): True, P("/3/0/14"): "+03:00"}

        cancel = await stack.http.delete("/api/devices/comp-3/composite/observe",
                                         params=[("path", "/3/0/14"), ("path", "/1/0/6")])  # fmt: skip
        assert cancel.status_code == 200, cancel.text
        assert stack.server.client.composite_observations("comp-3") == []
        events.drain()
        assert (await stack.http.put("/api/devices/comp-3/1/0/6", json=False)).status_code == 200
        await asyncio.sleep(0.5)
        assert [f for f in events.drain() if f.data["data"].get("path") == "/"] == []
    again = await stack.http.delete("/api/devices/comp-3/composite/observe", params={"path": "/1/0/6"})
    assert again.status_code == 404
