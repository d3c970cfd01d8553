"""GET /api/events (SSE) and observe, end to end: registrations, notifications, keep-alives, filters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from lwm2m_server.coap.observation import Observation
from lwm2m_server.protocol.paths import LwM2MPath
from tests.integration.api.conftest import M0, M4F, Stack, running_stack, wait_for
from tests.integration.api.sse import sse

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("events")
    async with running_stack(data_dir) as s:
        await s.add_device("obs-10", version="1.0", profile=M0)
        await s.add_device("obs-11", version="1.1", profile=M4F)
        yield s


async def test_registered_and_deregistered_events(stack: Stack) -> None:
    async with sse(stack.http) as events:
        device = await stack.add_device("ev-new", version="1.1", wait_profile=False)
        frame = await events.next(event="registered", endpoint="ev-new")
        assert frame.data["type"] == "registered"
        assert frame.data["data"]["lwm2m_version"] == "1.1" and frame.data["ts"] > 0
        await device.stop()
        del stack.devices["ev-new"]
        await events.next(event="deregistered", endpoint="ev-new")


@pytest.mark.parametrize("ep", ["obs-10", "obs-11"])
async def test_observe_notifications_reach_the_stream(stack: Stack, ep: str) -> None:
    url = f"/api/devices/{ep}/1/0/6/observe"
    async with sse(stack.http, endpoint=ep, type="notification") as events:
        assert (await stack.http.put(f"/api/devices/{ep}/1/0/6", json=True)).status_code == 200
        response = await stack.http.post(url)
        assert response.status_code == 200, response.text
        assert response.json()["value"] is True and response.json()["content"] == {"/1/0/6": True}

        assert (await stack.http.put(f"/api/devices/{ep}/1/0/6", json=False)).status_code == 200
        frame = await events.next(event="notification", path="/1/0/6")
        assert frame.data["endpoint"] == ep
        assert frame.data["data"]["values"] == {"/1/0/6": False}

        cancel = await stack.http.delete(url)
        assert cancel.status_code == 200 and cancel.json()["operation"] == "cancel-observe"
        events.drain()
        assert (await stack.http.put(f"/api/devices/{ep}/1/0/6", json=True)).status_code == 200
        await asyncio.sleep(0.5)
        assert [f for f in events.drain() if f.data["data"].get("path") == "/1/0/6"] == []

    again = await stack.http.delete(url)
    assert again.status_code == 404 and again.json()["error"] == "not_found"


async def test_endpoint_and_type_filters(stack: Stack) -> None:
    async with sse(stack.http, endpoint="obs-11", type="updated") as only_11:
        assert (await stack.http.post("/api/devices/obs-10/1/0/8")).status_code == 200  # Update from obs-10
        assert (await stack.http.post("/api/devices/obs-11/1/0/8")).status_code == 200  # Update from obs-11
        frame = await only_11.next(event="updated")
        assert frame.data["endpoint"] == "obs-11"
        await asyncio.sleep(0.3)
        assert all(f.data["endpoint"] == "obs-11" and f.event == "updated" for f in only_11.drain())


async def test_keepalive_comments_on_a_quiet_stream(stack: Stack) -> None:
    async with sse(stack.http, endpoint="nobody", keepalive=0.2) as events:
        await asyncio.sleep(0.7)
        assert events.comments.count("keep-alive") >= 2


async def test_observe_errors(stack: Stack) -> None:
    missing = await stack.http.post("/api/devices/ghost/3/0/0/observe")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    bad = await stack.http.post("/api/devices/obs-11/3/zero/observe")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
    absent = await stack.http.post("/api/devices/obs-11/3/0/999/observe")
    assert absent.status_code == 502 and absent.json()["error"] == "4.04"


async def test_api_observation_survives_a_device_reboot(stack: Stack) -> None:
    device = await stack.add_device("reboot-11", version="1.1")
    url = "/api/devices/reboot-11/1/0/6/observe"
    assert (await stack.http.post(url)).status_code == 200
    async with sse(stack.http, endpoint="reboot-11") as events:
        await device.reboot(down_s=0.1)
        await events.next(event="registered", timeout=10.0)

        async def reobserved() -> bool:
            return any(str(o.path) == "/1/0/6" and not o.cancelled
                       for o in stack.server.client.observations("reboot-11"))

        await wait_for(reobserved, 10.0, "the API observation to be re-established")
        assert (await stack.http.put("/api/devices/reboot-11/1/0/6", json=False)).status_code == 200
        frame = await events.next(event="notification", path="/1/0/6")
        assert frame.data["data"]["values"] == {"/1/0/6": False}
    assert (await stack.http.delete(url)).status_code == 200
    assert not await reobserved()


async def test_opaque_notification_uses_the_api_value_encoding(stack: Stack) -> None:
    """Notification events carry opaque as {"hex": ...} like the REST API: on SSE and in the event log."""
    device = stack.devices["obs-11"]
    assert device.objects is not None
    device.objects.add_instance(6, 0, {0: 60.17, 1: 24.94, 4: b"\x01\x02", 5: 1_700_000_000})
    url = "/api/devices/obs-11/6/0/4/observe"
    async with sse(stack.http, endpoint="obs-11", type="notification") as events:
        response = await stack.http.post(url)
        assert response.status_code == 200, response.text
        assert response.json()["content"] == {"/6/0/4": {"hex": "0102"}}
        device.objects.set(LwM2MPath(6, 0, 4), b"\xab\xcd\xef")
        frame = await events.next(event="notification", path="/6/0/4")
        assert frame.data["data"]["values"] == {"/6/0/4": {"hex": "abcdef"}}
    assert (await stack.http.delete(url)).status_code == 200
    logged = await stack.server.store.events(endpoint="obs-11", type="notification", limit=20)
    assert {"/6/0/4": {"hex": "abcdef"}} in [e["data"]["values"] for e in logged]


async def test_api_delete_never_cancels_the_servers_own_observations(stack: Stack) -> None:
    """/5/0/3 is observed by the inventory for OTA: the API can share it, but its DELETE only drops its own."""
    ep, path = "obs-11", LwM2MPath(5, 0, 3)
    device = stack.devices[ep]
    assert device.objects is not None

    def inventory_handles() -> list[Observation]:
        return [o for o in stack.server.client.observations(ep) if o.path == path and o.owner == "inventory"]

    assert len(inventory_handles()) == 1
    url = f"/api/devices/{ep}/5/0/3/observe"
    none_of_ours = await stack.http.delete(url)
    assert none_of_ours.status_code == 404 and none_of_ours.json()["error"] == "not_found"
    assert len(inventory_handles()) == 1

    assert (await stack.http.post(url)).status_code == 200
    assert len([s for s in stack.server.client.coap_observations(ep) if s.path == path]) == 1  # shared
    assert (await stack.http.delete(url)).status_code == 200
    assert len(inventory_handles()) == 1 and not any(o.cancelled for o in inventory_handles())

    async with sse(stack.http, endpoint=ep, type="notification") as events:
        device.objects.set(path, 1)  # the device starts downloading: OTA still hears it
        frame = await events.next(event="notification", path="/5/0/3")
        assert frame.data["data"]["values"] == {"/5/0/3": 1}
    device.objects.set(path, 0)
