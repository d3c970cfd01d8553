"""Interop with a real third-party LwM2M client: Telefonica's ``lwm2m-node-lib`` 1.4.0 (npm, Node.js, over
node-coap 0.22), registering with our server over real UDP on 127.0.0.1 (``node/client.js``).

What that client is, established from its source and checked here:

* LwM2M 1.0: ``POST /rd?ep=&lt=&lwm2m=1.0&b=U`` with ``</3/0>,</1/0>`` (no ``</>``, no ``ct=``, no
  Content-Format); Update re-sends query and object links **from a new UDP port** and then listens there.
* It serves only single resources (``GET /3/0`` is 4.04), always answers in plain text **without a
  Content-Format option whatever the Accept**, and takes any write payload as UTF-8 text whatever its
  Content-Format (their bugs: RFC 7252 §5.10.4 wants the asked format or 4.06, LwM2M 1.0 §6.4 wants the
  format indicated). Our server negotiates TLV for 1.0 and decodes a response lacking Content-Format as
  the format it asked for, so the workaround is to ask for text explicitly (``content_format=0``,
  ``?format=text`` in the REST API).
* node-coap 0.22 silently drops any request whose Accept/Content-Format number it has no name for, so
  ``client.js`` names every LwM2M format (their config hook ``formats``); without it every Read we send
  (Accept: TLV) would time out.
* Notifications carry no Content-Format either; the first one repeats the Observe number of the
  initial response (1), which aiocoap accepts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from lwm2m_server.coap.device_client import BadResponse, DeviceError
from lwm2m_server.events import Event
from lwm2m_server.protocol.codecs import ContentFormat, encode
from lwm2m_server.protocol.paths import LwM2MPath
from tests.interop.conftest import Stack
from tests.interop.nodeproc import NodeProcess, requires

pytestmark = requires("lwm2m-node-lib")

TEXT = ContentFormat.TEXT
EP = "node-lib-1"


async def wait_event(stack: Stack, kind: str, timeout: float = 5.0) -> Event:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event = await stack.events.get(max(0.01, deadline - loop.time()))
        if event.type == kind and event.endpoint == EP:
            return event


@pytest_asyncio.fixture
async def client(stack: Stack) -> AsyncIterator[NodeProcess]:
    """The node client, registered with ``stack``'s server (lifetime 60 s), once our inventory is done with it.

    The library answers Register from a throwaway socket and only then listens on that port, so the inventory's
    first read (sent on Register) is lost and retransmitted ~2-3 s later; waiting for it keeps the tests' own
    exchanges from queueing behind that retransmission (NSTART=1)."""
    node = await NodeProcess.start("client.js", "127.0.0.1", str(stack.coap_port), EP, "60")
    try:
        await node.expect("registered", timeout=10.0)
        await wait_event(stack, "inventory", timeout=15.0)
        yield node
    finally:
        await node.close()


def p(text: str) -> LwM2MPath:
    return LwM2MPath.parse(text)


async def test_registration_as_seen_by_our_registry(stack: Stack, client: NodeProcess) -> None:
    reg = stack.server.registry.get(EP)
    assert reg is not None, client.diagnostics()
    registered = client.seen("registered")[0]
    assert registered["location"] == f"rd/{reg.reg_id}"  # our Location-Path, as the client stored it
    assert (reg.host, reg.port) == ("127.0.0.1", registered["port"])  # it listens where it registered from
    assert reg.lifetime == 60 and reg.binding == "U" and not reg.queue_mode
    assert reg.lwm2m_version == "1.0" and reg.root_path == "/"
    assert reg.content_formats == frozenset()  # no </>;ct=... in 1.0
    assert dict(reg.objects) == {1: None, 3: None}
    assert reg.instances == frozenset({p("/1/0"), p("/3/0")})
    # The inventory's instance read of /3/0 is refused (the client serves single resources only): the device
    # is listed with an unknown profile rather than failing.
    response = await stack.http.get(f"/api/devices/{EP}")
    assert response.status_code == 200, response.text
    assert response.json()["endpoint"] == EP


async def test_read_single_resources_as_text(stack: Stack, client: NodeProcess) -> None:
    read = stack.server.client.read
    assert await read(EP, "/3/0/0", content_format=TEXT) == {p("/3/0/0"): "Telefonica I+D"}
    assert await read(EP, "/3/0/2", content_format=TEXT) == {p("/3/0/2"): f"SN-{EP}"}
    assert await read(EP, "/3/0/9", content_format=TEXT) == {p("/3/0/9"): 87}  # typed by our model: Integer
    assert await read(EP, "/1/0/1", content_format=TEXT) == {p("/1/0/1"): 60}
    # The read handler in client.js saw those requests.
    assert {"/3/0/0", "/3/0/2", "/3/0/9"} <= {f"{x['uri']}/{x['res']}" for x in client.seen("read")}


async def test_what_does_not_interoperate_and_why(stack: Stack, client: NodeProcess) -> None:
    read = stack.server.client.read
    # Default negotiation for 1.0 asks for TLV; the client answers text with no Content-Format, which we
    # decode as the TLV we asked for (their bug; see the module docstring).
    assert stack.server.client.negotiated_format(EP, "/3/0/0") == ContentFormat.TLV
    with pytest.raises(BadResponse, match="11542"):
        await read(EP, "/3/0/0")
    # Instance reads are not implemented by the library (its read handler needs a resource id): 4.04.
    with pytest.raises(DeviceError) as err:
        await read(EP, "/3/0")
    assert err.value.coap_code == "4.04"
    # A resource the client never set is 4.04 as well.
    with pytest.raises(DeviceError) as err:
        await read(EP, "/3/0/13", content_format=TEXT)
    assert err.value.coap_code == "4.04"
    # A TLV write is taken as text: the client stores the TLV bytes themselves (its Content-Format ignored).
    await stack.server.client.write(EP, "/3/0/14", {p("/3/0/14"): "+09:00"})
    written = await client.expect("write", res="14")
    tlv = encode(ContentFormat.TLV, p("/3/0/14"), {p("/3/0/14"): "+09:00"}, stack.server.client.model)
    assert written["value"] == tlv.decode("utf-8", "replace") != "+09:00"
    # ... and the device keeps answering afterwards (nothing wedged).
    assert await read(EP, "/3/0/1", content_format=TEXT) == {p("/3/0/1"): "lwm2m-node-lib"}


async def test_a_dropped_request_does_not_wedge_the_device(stack: Stack, client: NodeProcess) -> None:
    """node-coap silently drops a request with an Accept it cannot name (here 65000). Our request times out;
    the *next* one must go out at once. aiocoap keeps retransmitting a CON whose response future was
    cancelled (chrysn/aiocoap#363) and, with NSTART=1, queued every later request to the device behind it for
    up to 93 s: every following request timed out too. ``exchange.send`` now abandons the exchange."""
    loop = asyncio.get_running_loop()
    dc = stack.server.client
    with pytest.raises(DeviceError) as err:
        await dc.raw_request(EP, "GET", "/3/0/0", accept=65000, timeout=1.0)
    assert err.value.coap_code == "timeout"
    started = loop.time()
    assert await dc.read(EP, "/3/0/1", content_format=TEXT, timeout=4.0) == {p("/3/0/1"): "lwm2m-node-lib"}
    assert loop.time() - started < 1.0  # answered straight away, not after a retransmission of the dead one


async def test_write_then_read_back(stack: Stack, client: NodeProcess) -> None:
    dc = stack.server.client
    await dc.write(EP, "/3/0/15", {p("/3/0/15"): "Asia/Tokyo"}, content_format=TEXT)
    assert (await client.expect("write", res="15"))["value"] == "Asia/Tokyo"
    assert await dc.read(EP, "/3/0/15", content_format=TEXT) == {p("/3/0/15"): "Asia/Tokyo"}
    await dc.write(EP, "/1/0/1", {p("/1/0/1"): 120}, content_format=TEXT)  # Integer as text
    assert (await client.expect("write", uri="/1/0", res="1"))["value"] == "120"
    assert await dc.read(EP, "/1/0/1", content_format=TEXT) == {p("/1/0/1"): 120}


async def test_execute_fires_the_client_handler(stack: Stack, client: NodeProcess) -> None:
    await stack.server.client.execute(EP, "/3/0/4")
    assert await client.expect("execute", uri="/3/0", res="4") == {
        "event": "execute", "uri": "/3/0", "res": "4", "args": ""
    }  # fmt: skip
    await stack.server.client.execute(EP, "/1/0/8", "0='now',1")
    assert (await client.expect("execute", uri="/1/0", res="8"))["args"] == "0='now',1"


async def test_observe_and_notifications(stack: Stack, client: NodeProcess) -> None:
    obs = await stack.server.client.observe(EP, "/3/0/9", content_format=TEXT)
    try:
        assert obs.value == {p("/3/0/9"): 87} and not obs.cancelled
        for level in (50, 40, 39):
            await client.send(cmd="set", uri="/3/0", res="9", value=str(level))
            assert await obs.next(5.0) == {p("/3/0/9"): level}
            event = await wait_event(stack, "notification")
            assert event.data["path"] == "/3/0/9" and event.data["values"] == {"/3/0/9": level}
        assert obs.notifications == 3
        # Setting another resource notifies nothing on /3/0/9.
        await client.send(cmd="set", uri="/3/0", res="0", value="Other")
        await client.expect("set", res="0")
        with pytest.raises(TimeoutError):
            await obs.next(0.3)
    finally:
        obs.cancel()


async def test_discover_and_write_attributes(stack: Stack, client: NodeProcess) -> None:
    dc = stack.server.client
    links = await dc.discover(EP, "/3/0")
    targets = [link.target for link in links]
    assert targets[0] == "/3/0" and {"/3/0/0", "/3/0/9", "/3/0/15"} <= set(targets[1:])
    await dc.write_attributes(EP, "/3/0/1", {"pmin": 5, "pmax": 60})
    (link,) = await dc.discover(EP, "/3/0/1")
    assert link.target == "/3/0/1" and dict(link.params) == {"pmin": "5", "pmax": "60"}
    # Caveat (theirs): the library schedules notifications of a resource with pmax every pmax *milliseconds*
    # and then ignores value changes, so attributes are only written on a resource nobody observes here.


async def test_update_and_deregister_seen_by_registry(stack: Stack, client: NodeProcess) -> None:
    reg = stack.server.registry.get(EP)
    assert reg is not None
    first_port = reg.port
    await client.send(cmd="update")
    updated = await client.expect("updated")
    event = await wait_event(stack, "updated")
    assert event.endpoint == EP
    after = stack.server.registry.get(EP)
    assert after is not None and after.reg_id == reg.reg_id and after.lifetime == 60
    # node-coap sends the Update from a fresh socket and the client then listens there: we adopt the address.
    assert after.port == updated["port"] != first_port
    assert after.updated_at >= reg.updated_at
    assert await stack.server.client.read(EP, "/3/0/3", content_format=TEXT) == {p("/3/0/3"): "1.4.0"}

    await client.send(cmd="deregister")
    await client.expect("deregistered")
    await wait_event(stack, "deregistered")
    assert EP not in stack.server.registry
    response = await stack.http.get(f"/api/devices/{EP}")
    assert response.status_code == 404


async def test_observation_ends_when_the_client_moves(stack: Stack, client: NodeProcess) -> None:
    """The Update from a new port makes our server drop the observation (token + address belong to the old
    socket); after re-observing, notifications flow from the new port."""
    dc = stack.server.client
    obs = await dc.observe(EP, "/3/0/9", content_format=TEXT)
    await client.send(cmd="update")
    await client.expect("updated")
    await wait_event(stack, "updated")
    assert obs.cancelled
    again = await dc.observe(EP, "/3/0/9", content_format=TEXT)
    try:
        await client.send(cmd="set", uri="/3/0", res="9", value="12")
        assert await again.next(5.0) == {p("/3/0/9"): 12}
    finally:
        again.cancel()


async def test_rest_api_against_the_real_client(stack: Stack, client: NodeProcess) -> None:
    http = stack.http
    response = await http.get(f"/api/devices/{EP}/3/0/0", params={"format": "text"})
    assert response.status_code == 200, response.text
    assert response.json()["value"] == "Telefonica I+D"
    assert (await http.get(f"/api/devices/{EP}/3/0/9", params={"format": "text"})).json()["value"] == 87

    response = await http.put(f"/api/devices/{EP}/3/0/14", params={"format": "text"}, json="-03:00")
    assert response.status_code == 200, response.text
    assert (await client.expect("write", res="14"))["value"] == "-03:00"
    assert (await http.get(f"/api/devices/{EP}/3/0/14", params={"format": "text"})).json()["value"] == "-03:00"

    response = await http.post(f"/api/devices/{EP}/3/0/4")
    assert response.status_code == 200, response.text
    assert response.json()["operation"] == "execute"
    await client.expect("execute", res="4")

    response = await http.get(f"/api/devices/{EP}/3/0/discover")
    assert response.status_code == 200, response.text
    assert "/3/0/9" in {link["target"] for link in response.json()["links"]}

    # The negotiated (TLV) read is the documented mismatch: an undecodable answer, reported, not a crash.
    response = await http.get(f"/api/devices/{EP}/3/0/0")
    assert response.status_code == 502, response.text
    # A device error is relayed with its CoAP code.
    response = await http.get(f"/api/devices/{EP}/3/0", params={"format": "text"})
    assert response.status_code in (400, 404, 502), response.text
    assert response.json()["error"] == "4.04"
