"""Read / write / execute / delete through the REST API against LwM2M 1.0 (TLV) and 1.1 (SenML) devices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.api.conftest import M0, M4F, Stack, running_stack, wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

VERSIONS = {"1.0": "dev-10", "1.1": "dev-11"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("ops")
    async with running_stack(data_dir) as s:
        await s.add_device("dev-10", version="1.0", profile=M0)
        await s.add_device("dev-11", version="1.1", profile=M4F)
        yield s


@pytest.fixture(params=sorted(VERSIONS))
def ep(request: pytest.FixtureRequest) -> str:
    return VERSIONS[request.param]


async def test_read_instance_and_resource(stack: Stack, ep: str) -> None:
    response = await stack.http.get(f"/api/devices/{ep}/3/0")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["endpoint"] == ep and body["path"] == "/3/0" and body["value"] is None
    assert body["content"]["/3/0/0"] == "TinyMLaaS Sim"
    assert body["content"]["/3/0/2"] == f"SN-{ep}"
    assert body["content"]["/3/0/11/0"] == 0  # multiple resource instance
    single = (await stack.http.get(f"/api/devices/{ep}/32001/0/0")).json()
    profile = stack.devices[ep].config.profile
    assert single == {
        "endpoint": ep,
        "path": "/32001/0/0",
        "content": {"/32001/0/0": profile.ram_total},
        "value": profile.ram_total,
        "object_name": "TinyML Hardware",
        "resources": {"/32001/0/0": {"name": "RAM Total", "units": "B", "type": "Integer"}},
    }


@pytest.mark.parametrize(
    ("version", "fmt"),
    [("1.0", "tlv"), ("1.0", "text"), ("1.1", "senml-json"), ("1.1", "senml-cbor"), ("1.1", "112"), ("1.1", "text")],
)
async def test_read_with_explicit_format(stack: Stack, version: str, fmt: str) -> None:
    ep = VERSIONS[version]
    response = await stack.http.get(f"/api/devices/{ep}/3/0/0", params={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.json()["value"] == "TinyMLaaS Sim"


async def test_write_resource_then_read_back(stack: Stack, ep: str) -> None:
    for value in (False, True):
        response = await stack.http.put(f"/api/devices/{ep}/1/0/6", json=value)
        assert response.status_code == 200, response.text
        assert response.json() == {"endpoint": ep, "path": "/1/0/6", "operation": "write"}
        assert (await stack.http.get(f"/api/devices/{ep}/1/0/6")).json()["value"] is value
    response = await stack.http.put(f"/api/devices/{ep}/3/0/13", json=1_800_000_000)  # Time
    assert response.status_code == 200, response.text
    assert (await stack.http.get(f"/api/devices/{ep}/3/0/13")).json()["value"] == 1_800_000_000


@pytest.mark.parametrize(
    ("version", "fmt"), [("1.0", "tlv"), ("1.0", "text"), ("1.1", "senml-json"), ("1.1", "senml-cbor"), ("1.1", "text")]
)
async def test_write_with_explicit_format(stack: Stack, version: str, fmt: str) -> None:
    ep = VERSIONS[version]
    response = await stack.http.put(f"/api/devices/{ep}/1/0/3", params={"format": fmt}, json=321)
    assert response.status_code == 200, response.text
    assert (await stack.http.get(f"/api/devices/{ep}/1/0/3")).json()["value"] == 321


async def test_partial_instance_write_keeps_other_resources(stack: Stack, ep: str) -> None:
    response = await stack.http.put(
        f"/api/devices/{ep}/1/0", params={"partial": "true"}, json={"6": False, "/1/0/3": 120}
    )
    assert response.status_code == 200, response.text
    content = (await stack.http.get(f"/api/devices/{ep}/1/0")).json()["content"]
    assert content["/1/0/6"] is False and content["/1/0/3"] == 120
    assert content["/1/0/1"] == stack.devices[ep].config.lifetime  # untouched


async def test_execute_registration_update_trigger(stack: Stack, ep: str) -> None:
    device = stack.devices[ep]
    before = device.updates
    response = await stack.http.post(f"/api/devices/{ep}/1/0/8")
    assert response.status_code == 200, response.text
    assert response.json()["operation"] == "execute"

    async def updated() -> bool:
        return device.updates > before

    await wait_for(updated, 5.0, "the Update triggered by /1/0/8")


async def test_delete_instance_then_read_gives_device_404(stack: Stack, ep: str) -> None:
    assert (await stack.http.get(f"/api/devices/{ep}/4/0")).status_code == 200
    response = await stack.http.delete(f"/api/devices/{ep}/4/0")
    assert response.status_code == 200, response.text
    assert response.json()["operation"] == "delete"
    gone = await stack.http.get(f"/api/devices/{ep}/4/0")
    assert gone.status_code == 502
    assert gone.json()["error"] == "4.04"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "3/0/999", {}, 502, "4.04"),
        ("GET", "9999/0", {}, 404, "unknown_object"),  # neither the object model nor the device knows it
        ("PUT", "3/0/0", {"json": "new maker"}, 502, "4.05"),  # read-only resource
        ("POST", "3/0/0", {}, 502, "4.05"),  # not executable
        ("DELETE", "3/0", {}, 502, "4.05"),  # the Device object can't be deleted
        ("GET", "3/x", {}, 400, "bad_request"),
        ("GET", "3/0/1/2/3", {}, 400, "bad_request"),
        ("GET", "65535", {}, 400, "bad_request"),
        ("GET", "3/0", {"params": {"format": "yaml"}}, 400, "bad_request"),
        ("GET", "3/0", {"params": {"format": "link"}}, 400, "bad_request"),
        ("GET", "3/0", {"params": {"format": "9999"}}, 400, "bad_request"),
        ("GET", "3/0", {"params": {"timeout": "-1"}}, 400, "bad_request"),
        (
            "PUT",
            "1/0/1",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "bad_request",
        ),
        ("PUT", "1/0/1", {"json": "sixty"}, 400, "bad_request"),
        ("PUT", "1/0", {"json": 5}, 400, "bad_request"),
        ("PUT", "1", {"json": {"0/1": 5}}, 400, "bad_request"),
        ("POST", "1/0", {}, 400, "bad_request"),  # execute needs a resource
        ("POST", "1/0/8", {"content": b"\xff\xfe"}, 400, "bad_request"),
    ],
)
async def test_error_shapes(
    stack: Stack, ep: str, method: str, path: str, kwargs: dict[str, object], status: int, code: str
) -> None:
    response = await stack.http.request(method, f"/api/devices/{ep}/{path}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == code and body["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE"])
async def test_unknown_device_is_404_for_every_operation(stack: Stack, method: str) -> None:
    kwargs = {"json": 1} if method == "PUT" else {}
    response = await stack.http.request(method, "/api/devices/ghost/1/0/1", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "unknown device 'ghost'"}


async def test_silent_device_times_out_with_504(stack: Stack) -> None:
    device = await stack.add_device("silent", version="1.1")
    assert device.link is not None
    device.link.loss_pct = 100.0  # the radio drops everything: the device stops answering
    try:
        started = asyncio.get_running_loop().time()
        response = await stack.http.get("/api/devices/silent/3/0/0", params={"timeout": "1"})
        elapsed = asyncio.get_running_loop().time() - started
        assert response.status_code == 504, response.text
        assert response.json()["error"] == "timeout"
        assert elapsed < 5.0
        # the other devices are still served
        assert (await stack.http.get("/api/devices/dev-11/3/0/0")).status_code == 200
    finally:
        device.link.loss_pct = 0.0


async def test_execute_arguments_reach_the_device(stack: Stack, ep: str) -> None:
    device = stack.devices[ep]
    assert device.objects is not None
    received: list[str] = []
    device.objects.on_execute(32002, 13, lambda _path, args: received.append(args))  # record, as a device would
    text = await stack.http.post(
        f"/api/devices/{ep}/32002/0/13", content="0='fast',1", headers={"content-type": "text/plain"}
    )
    assert text.status_code == 200, text.text
    as_json = await stack.http.post(f"/api/devices/{ep}/32002/0/13", json="2='x'")
    assert as_json.status_code == 200, as_json.text
    empty = await stack.http.post(f"/api/devices/{ep}/32002/0/13")
    assert empty.status_code == 200, empty.text
    assert received == ["0='fast',1", "2='x'", ""]


async def test_discover_and_write_attributes(stack: Stack, ep: str) -> None:
    response = await stack.http.get(f"/api/devices/{ep}/3/0/discover")
    assert response.status_code == 200, response.text
    body = response.json()
    targets = {link["target"] for link in body["links"]}
    assert body["path"] == "/3/0" and {"/3/0", "/3/0/0", "/3/0/9"} <= targets

    response = await stack.http.put(f"/api/devices/{ep}/3/0/9/attributes", json={"pmin": 2, "pmax": 30})
    assert response.status_code == 200, response.text
    assert response.json()["operation"] == "write-attributes"
    links = (await stack.http.get(f"/api/devices/{ep}/3/0/9/discover")).json()["links"]
    params = next(link["params"] for link in links if link["target"] == "/3/0/9")
    assert params.get("pmin") == "2" and params.get("pmax") == "30"
    cleared = await stack.http.put(f"/api/devices/{ep}/3/0/9/attributes", json={"pmax": None})
    assert cleared.status_code == 200, cleared.text
    links = (await stack.http.get(f"/api/devices/{ep}/3/0/9/discover")).json()["links"]
    assert "pmax" not in next(link["params"] for link in links if link["target"] == "/3/0/9")


@pytest.mark.parametrize(
    "body",
    [{"pmin": 10, "pmax": 5}, {"gt": 1, "lt": 2}, {"nope": 1}, {}, [1], {"pmin": -1}, {"pmin": True}],
)
async def test_bad_attributes_are_400(stack: Stack, body: object) -> None:
    response = await stack.http.put("/api/devices/dev-11/3/0/9/attributes", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request"
