"""An LwM2M 1.2 client (the simulator announcing LwM2M-CBOR 11544) over real UDP: registration, reads and
writes negotiated as LwM2M-CBOR, composite operations answered in LwM2M-CBOR, and the inventory working."""

from __future__ import annotations

from lwm2m_server.protocol.codecs import ContentFormat, decode_root
from lwm2m_server.protocol.composite import encode_paths
from lwm2m_server.protocol.paths import LwM2MPath
from tests.integration.api.conftest import Stack

P = LwM2MPath.parse


async def test_1_2_client_negotiates_lwm2m_cbor(stack: Stack) -> None:
    device = await stack.add_device("v12", version="1.2")  # waits for the inventory profile (reads over 11544)
    reg = stack.server.registry.get("v12")
    assert reg is not None and reg.lwm2m_version == "1.2" and 11544 in reg.content_formats
    assert stack.server.client.negotiated_format("v12", "/3/0") == ContentFormat.LWM2M_CBOR

    read = await stack.http.get("/api/devices/v12/3/0")
    assert read.status_code == 200, read.text
    assert read.json()["content"]["/3/0/0"] == "TinyMLaaS Sim"
    write = await stack.http.put("/api/devices/v12/1/0", json={"1": 555}, params={"partial": "true"})
    assert write.status_code == 200, write.text
    assert device.objects is not None and device.objects.get(P("/1/0/1")) == 555

    # the wire answer really is LwM2M-CBOR
    body = encode_paths(ContentFormat.SENML_CBOR, [P("/3/0/0"), P("/1/0/1")])
    resp = await stack.server.client.raw_request("v12", "FETCH", "/", body, content_format=112, accept=11544)
    assert resp.code == "2.05" and resp.content_format == ContentFormat.LWM2M_CBOR
    assert decode_root(11544, resp.payload, stack.server.client.model) == {P("/3/0/0"): "TinyMLaaS Sim",
                                                                             P("/1/0/1"): 555}  # fmt: skip


async def test_1_2_composite_operations(stack: Stack) -> None:
    device = await stack.add_device("v12c", version="1.2", wait_profile=False)
    write = await stack.http.put("/api/devices/v12c/composite", json={"/1/0/1": 777, "/3/0/14": "+04:00"})
    assert write.status_code == 200, write.text
    assert device.objects is not None and device.objects.get(P("/3/0/14")) == "+04:00"
    read = await stack.http.post("/api/devices/v12c/composite/read", json={"paths": ["/1/0/1", "/3/0/14"]})
    assert read.status_code == 200 and read.json()["content"] == {"/1/0/1": 777, "/3/0/14": "+04:00"}
    obs = await stack.server.client.observe_composite("v12c", ["/3/0/14", "/1/0/6"])
    assert obs.content_format == ContentFormat.LWM2M_CBOR and obs.value[P("/3/0/14")] == "+04:00"
    assert (await stack.http.put("/api/devices/v12c/3/0/14", json="+06:00")).status_code == 200
    assert (await obs.next(5.0))[P("/3/0/14")] == "+06:00"
    obs.cancel()
