"""What the dashboard's fleet and device views need from the API, over real HTTP against a real server and
simulated devices: ``filter`` in the rollout target language, ``sort``, the per-device compile class, Object 5
state and installed model, and ``GET /api/objects``. Bad input is a 400 in the one error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwm2m_server.rollouts.deployer import class_of, device_attributes
from lwm2m_server.rollouts.filters import FilterError, parse_filter
from tests.integration.api.conftest import M0, M4F, U55, Stack, running_stack
from tests.support.browser import auth_headers

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("fleet-view")
    async with running_stack(data_dir) as stack:
        stack.http.headers.update(auth_headers())
        await stack.add_device("m4f-a", version="1.1", profile=M4F)
        await stack.add_device("m0-b", version="1.0", profile=M0)
        await stack.add_device("u55-c", version="1.1", profile=U55)
        yield stack


async def _page(stack: Stack, **params: Any) -> dict[str, Any]:
    response = await stack.http.get("/api/devices", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _endpoints(stack: Stack, **params: Any) -> list[str]:
    return [item["endpoint"] for item in (await _page(stack, **params))["items"]]


@pytest.mark.parametrize(("expression", "expected"), [
    ('accelerator == "none"', ["m0-b", "m4f-a"]),
    ("ram_total >= 262144", ["m4f-a", "u55-c"]),
    ('lwm2m_version == "1.0" or cpu == "cortex-m55"', ["m0-b", "u55-c"]),
    ('endpoint in ["m4f-a", "nope"]', ["m4f-a"]),
    ("not fpu", ["m0-b"]),
    ("", ["m0-b", "m4f-a", "u55-c"]),
])  # fmt: skip
async def test_filter_is_the_rollout_target_language(fleet: Stack, expression: str, expected: list[str]) -> None:
    assert await _endpoints(fleet, filter=expression) == expected


async def test_filter_counts_match_what_a_rollout_would_target(fleet: Stack) -> None:
    expression = 'accelerator == "none" and flash_total >= 262144'
    page = await _page(fleet, filter=expression, limit=1)
    assert page["total"] == 2 and len(page["items"]) == 1  # total before paging: the live count of a rollout form
    flt = parse_filter(expression)
    server = fleet.server
    wanted = [r.endpoint for r in server.registry.all()
              if flt.matches(device_attributes(r, await server.profile(r.endpoint)))]  # fmt: skip
    assert sorted(wanted) == await _endpoints(fleet, filter=expression)


async def test_filter_combines_with_the_field_filters(fleet: Stack) -> None:
    assert await _endpoints(fleet, filter="ram_total >= 65536", lwm2m_version="1.1") == ["m4f-a", "u55-c"]


@pytest.mark.parametrize(("sort", "expected"), [
    ("endpoint", ["m0-b", "m4f-a", "u55-c"]),
    ("-endpoint", ["u55-c", "m4f-a", "m0-b"]),
    ("ram_total", ["m0-b", "m4f-a", "u55-c"]),
    ("-ram_total", ["u55-c", "m4f-a", "m0-b"]),
    ("cpu", ["m0-b", "m4f-a", "u55-c"]),
    ("-registered_at", ["u55-c", "m0-b", "m4f-a"]),
])  # fmt: skip
async def test_sort(fleet: Stack, sort: str, expected: list[str]) -> None:
    assert await _endpoints(fleet, sort=sort) == expected


async def test_sort_pages_through_the_sorted_list(fleet: Stack) -> None:
    first = await _endpoints(fleet, sort="-ram_total", limit=2)
    rest = await _endpoints(fleet, sort="-ram_total", limit=2, offset=2)
    assert first + rest == ["u55-c", "m4f-a", "m0-b"]


async def test_devices_carry_compile_class_object5_and_model(fleet: Stack) -> None:
    items = {d["endpoint"]: d for d in (await _page(fleet))["items"]}
    for endpoint, item in items.items():
        reg = fleet.server.registry.get(endpoint)
        expected = class_of(device_attributes(reg, await fleet.server.profile(endpoint)))[0]
        assert item["compile_class"] == expected != "hardware-unknown"
    assert items["m4f-a"]["compile_class"] != items["u55-c"]["compile_class"]
    assert {d["fw_state"] for d in items.values()} == {"idle"}  # the inventory observes /5/0/3
    assert {d["fw_result"] for d in items.values()} == {"initial"}
    detail = (await fleet.http.get("/api/devices/m4f-a")).json()
    assert detail["compile_class"] == items["m4f-a"]["compile_class"] and detail["fw_state"] == "idle"
    assert "installed_model" in detail and "installed_version" in detail


@pytest.mark.parametrize(("params", "needle"), [
    ({"filter": "ram_total >="}, "invalid filter syntax"),
    ({"filter": "__import__('os')"}, "not allowed in a filter: Call"),
    ({"filter": "a.b == 1"}, "not allowed in a filter: Attribute"),
    ({"filter": "x" * 2001}, "at most 2000 characters"),
    ({"sort": "password"}, "query.sort"),
    ({"sort": "--ram_total"}, "query.sort"),
])  # fmt: skip
async def test_bad_filter_or_sort_is_400_in_words(fleet: Stack, params: dict[str, str], needle: str) -> None:
    response = await fleet.http.get("/api/devices", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "bad_request" and needle in body["message"], body


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=80))
async def test_any_filter_text_is_200_or_400_never_500(fleet: Stack, text: str) -> None:
    response = await fleet.http.get("/api/devices", params={"filter": text})
    try:
        parse_filter(text)
        valid = True
    except FilterError:
        valid = False
    assert response.status_code == (200 if valid else 400), (text, response.text)
    assert (await fleet.http.get("/healthz")).status_code == 200


async def test_objects_are_the_ddf_model(fleet: Stack) -> None:
    response = await fleet.http.get("/api/objects")
    assert response.status_code == 200
    objects = {o["id"]: o for o in response.json()}
    assert {3, 5, 32001, 32002} <= set(objects)
    device = {r["id"]: r for r in objects[3]["resources"]}
    assert device[0]["name"] == "Manufacturer" and device[0]["readable"] and not device[0]["writable"]
    assert device[4]["name"] == "Reboot" and device[4]["executable"] and device[4]["type"] == "none"
    assert device[13]["writable"] and device[13]["type"] == "Time"
    assert objects[32002]["name"] == "TinyML Model"
    assert [o["id"] for o in response.json()] == sorted(objects)
