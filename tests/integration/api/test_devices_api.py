"""GET /api/devices (filters, paging) and GET /api/devices/{ep}, through real HTTP against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.api.conftest import M0, M4F, U55, Stack, running_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("fleet")
    async with running_stack(data_dir) as stack:
        await stack.add_device("m4f-a", version="1.1", profile=M4F)
        await stack.add_device("m0-b", version="1.0", profile=M0)
        await stack.add_device("u55-c", version="1.1", profile=U55)
        yield stack


async def _endpoints(stack: Stack, **params: object) -> list[str]:
    response = await stack.http.get("/api/devices", params=params)
    assert response.status_code == 200, response.text
    return [item["endpoint"] for item in response.json()["items"]]


async def test_list_returns_every_device_with_profile(fleet: Stack) -> None:
    response = await fleet.http.get("/api/devices")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3 and body["limit"] == 100 and body["offset"] == 0
    items = {item["endpoint"]: item for item in body["items"]}
    assert list(items) == ["m0-b", "m4f-a", "u55-c"]
    assert items["u55-c"]["profile"]["accelerator"] == "ethos-u55-128"
    assert items["m0-b"]["profile"]["ram_total"] == M0.ram_total
    assert items["m0-b"]["lwm2m_version"] == "1.0" and items["m4f-a"]["lwm2m_version"] == "1.1"
    assert all(item["online"] and not item["sleeping"] for item in items.values())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"accelerator": "ethos-u55-128"}, ["u55-c"]),
        ({"accelerator": "none", "min_ram": 131072}, ["m4f-a"]),
        ({"min_ram": 131072}, ["m4f-a", "u55-c"]),
        ({"min_ram_free": 200 * 1024}, ["u55-c"]),
        ({"fpu": "false"}, ["m0-b"]),
        ({"cpu": "CORTEX-M55"}, ["u55-c"]),
        ({"lwm2m_version": "1.0"}, ["m0-b"]),
        ({"online": "true"}, ["m0-b", "m4f-a", "u55-c"]),
        ({"sleeping": "true"}, []),
        ({"prefix": "m"}, ["m0-b", "m4f-a"]),
        ({"hardware_known": "true", "min_flash": 2 * 1024 * 1024}, ["u55-c"]),
    ],
)
async def test_filters(fleet: Stack, params: dict[str, object], expected: list[str]) -> None:
    assert await _endpoints(fleet, **params) == expected


async def test_paging_reports_total_before_paging(fleet: Stack) -> None:
    first = (await fleet.http.get("/api/devices", params={"limit": 2})).json()
    second = (await fleet.http.get("/api/devices", params={"limit": 2, "offset": 2})).json()
    assert first["total"] == second["total"] == 3
    assert [i["endpoint"] for i in first["items"]] == ["m0-b", "m4f-a"]
    assert [i["endpoint"] for i in second["items"]] == ["u55-c"]
    beyond = (await fleet.http.get("/api/devices", params={"offset": 10})).json()
    assert beyond["total"] == 3 and beyond["items"] == []


async def test_device_detail(fleet: Stack) -> None:
    response = await fleet.http.get("/api/devices/m0-b")
    assert response.status_code == 200
    body = response.json()
    device = fleet.devices["m0-b"]
    assert body["endpoint"] == "m0-b" and body["binding"] == "U" and body["queue_mode"] is False
    assert body["address"] == f"127.0.0.1:{device.port}" or body["address"].endswith(f":{device.port}")
    assert "32001" in body["objects"] and "/3/0" in body["instances"]
    assert body["profile"]["cpu"] == "cortex-m0plus" and body["profile"]["fpu"] is False
    assert body["last_seen"] >= body["registered_at"] > 0


async def test_unknown_device_is_404_json(fleet: Stack) -> None:
    response = await fleet.http.get("/api/devices/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "unknown device 'nope'"}


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "offset=-1", "min_ram=-5", "fpu=maybe"])
async def test_bad_query_is_400_json(fleet: Stack, query: str) -> None:
    response = await fleet.http.get(f"/api/devices?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request" and body["message"]


async def test_unknown_route_is_404_json(fleet: Stack) -> None:
    response = await fleet.http.get("/api/nothing-here")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


async def test_healthz(fleet: Stack) -> None:
    body = (await fleet.http.get("/healthz")).json()
    assert body["status"] == "ok" and body["devices"] == 3 and body["coap_port"] == fleet.server.coap_port
