"""A simulated device over real UDP on loopback, driven by a plain aiocoap client and a minimal RD.

Byte vectors are derived by hand from the specs (TLV: OMA TS Core 7.4.3; SenML-CBOR: RFC 8428 + LwM2M labels),
so a codec bug can't hide behind a symmetric round trip.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import aiocoap
import cbor2
import pytest
from aiocoap import FETCH, GET, POST, PUT, Code, Message
from aiocoap.numbers.codes import DELETE

from lwm2m_server.protocol.paths import LwM2MPath
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig, FaultConfig
from tests.integration.simulator.conftest import RDServer

pytestmark = pytest.mark.timeout(60)

TLV, SENML_CBOR, SENML_JSON, TEXT, LINK = 11542, 112, 110, 0, 40


async def request(
    rd: RDServer,
    device: SimulatedDevice,
    method: Code,
    path: str,
    payload: bytes = b"",
    *,
    cf: int | None = None,
    accept: int | None = None,
    query: Sequence[str] = (),
    timeout: float = 10.0,
) -> Message:
    msg = Message(code=method, uri=f"coap://127.0.0.1:{device.port}/{path.strip('/')}", payload=payload)
    if not path.strip("/"):
        msg.opt.uri_path = ()
    if cf is not None:
        msg.opt.content_format = cf
    if accept is not None:
        msg.opt.accept = accept
    if query:
        msg.opt.uri_query = tuple(query)
    return await asyncio.wait_for(rd.context.request(msg).response, timeout)


@pytest.fixture
async def devices(rd_server: RDServer) -> AsyncIterator[list[SimulatedDevice]]:
    started: list[SimulatedDevice] = []
    yield started
    for d in started:
        await d.stop()


async def start(devices: list[SimulatedDevice], rd: RDServer, **kw: object) -> SimulatedDevice:
    kw.setdefault("endpoint", f"dev{len(devices)}")
    device = SimulatedDevice(DeviceConfig(**kw), seed=7)  # type: ignore[arg-type]
    devices.append(device)
    await asyncio.wait_for(device.start(rd.uri), 10)
    return device


# ---- registration, update, de-registration ------------------------------------------------------


async def test_register_1_1_is_byte_exact(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, endpoint="node-11", lifetime=120, lwm2m_version="1.1")
    (reg,) = rd_server.rd.of("0.02", path_len=1)
    assert reg.path == ("rd",)
    assert reg.query == ("ep=node-11", "lt=120", "lwm2m=1.1", "b=U")
    assert reg.content_format == LINK
    assert reg.payload == (
        b'</>;rt="oma.lwm2m";ct="110 112 11542",</1>;ver=1.1,</1/0>,</3>;ver=1.1,</3/0>,'
        b"</4>;ver=1.3,</4/0>,</5>;ver=1.1,</5/0>,</32001/0>,</32002/0>"
    )
    assert reg.port == device.port  # registered from the socket that serves requests
    assert device.registration_location == ("rd", "r1")


async def test_register_1_0_queue_mode_is_byte_exact(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    await start(devices, rd_server, endpoint="node-10", lifetime=30, lwm2m_version="1.0", binding="UQ")
    (reg,) = rd_server.rd.of("0.02", path_len=1)
    assert reg.query == ("ep=node-10", "lt=30", "lwm2m=1.0", "b=UQ")
    assert reg.payload == b"</1/0>,</3/0>,</4/0>,</5/0>,</32001/0>,</32002/0>"


async def test_register_1_1_queue_mode_uses_valueless_q(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    await start(devices, rd_server, endpoint="nb-1", lifetime=300, binding="UQ")
    (reg,) = rd_server.rd.of("0.02", path_len=1)
    assert reg.query == ("ep=nb-1", "lt=300", "lwm2m=1.1", "b=U", "Q")


async def test_updates_before_lifetime_and_deregister_on_stop(
    rd_server: RDServer, devices: list[SimulatedDevice]
) -> None:
    device = await start(devices, rd_server, lifetime=60, update_interval_s=0.2)
    for _ in range(100):
        if len(rd_server.rd.of("0.02", path_len=2)) >= 2:
            break
        await asyncio.sleep(0.05)
    updates = rd_server.rd.of("0.02", path_len=2)
    assert len(updates) >= 2
    assert all(u.path == ("rd", "r1") and u.query == () and u.payload == b"" for u in updates)
    await device.stop()
    devices.clear()
    deregs = rd_server.rd.of("0.04")
    # (a CON retransmitted under heavy CPU load may show up twice; it is the same request)
    assert deregs and {d.path for d in deregs} == {("rd", "r1")}, rd_server.rd.seen
    assert rd_server.rd.live == {}


async def test_default_update_interval_is_75_percent_of_lifetime() -> None:
    assert DeviceConfig(endpoint="x", lifetime=40).update_interval == 30.0


async def test_lifetime_write_sends_update_with_lt(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lwm2m_version="1.0", lifetime=60)
    # TLV resource 1 = 120: type 0b11_0_00_001 (resource, 8-bit id, 1-byte inline length), id 0x01, value 0x78
    resp = await request(rd_server, device, PUT, "/1/0/1", bytes.fromhex("c10178"), cf=TLV)
    assert resp.code == Code.CHANGED
    for _ in range(100):
        if rd_server.rd.of("0.02", path_len=2):
            break
        await asyncio.sleep(0.05)
    (update,) = rd_server.rd.of("0.02", path_len=2)
    assert update.query == ("lt=120",)


async def test_server_forgetting_the_device_makes_it_register_again(
    rd_server: RDServer, devices: list[SimulatedDevice]
) -> None:
    device = await start(devices, rd_server, lifetime=60)
    rd_server.rd.live.clear()
    resp = await request(rd_server, device, POST, "/1/0/8")  # Registration Update Trigger
    assert resp.code == Code.CHANGED
    for _ in range(100):
        if len(rd_server.rd.of("0.02", path_len=1)) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(rd_server.rd.of("0.02", path_len=1)) == 2
    assert device.registration_location == ("rd", "r2")


# ---- reads: pinned byte vectors --------------------------------------------------------------------


async def test_tlv_read_vectors_1_0(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lwm2m_version="1.0", lifetime=60)
    resp = await request(rd_server, device, GET, "/1/0")
    assert resp.code == Code.CONTENT and resp.opt.content_format == TLV
    # /1/0/0 short id 1, /1/0/1 lifetime 60, /1/0/6 storing true, /1/0/7 binding "U"; each a resource TLV
    # with an 8-bit id and a 1-byte inline length: type 0xC1.
    assert resp.payload.hex() == "c10001" + "c1013c" + "c10601" + "c10755"
    resp = await request(rd_server, device, GET, "/5/0/3")
    assert resp.payload.hex() == "c10300"
    resp = await request(rd_server, device, GET, "/3/0/0", accept=TEXT)
    assert resp.opt.content_format == TEXT and resp.payload == b"TinyMLaaS Sim"
    resp = await request(rd_server, device, GET, "/3/0", accept=SENML_CBOR)
    assert resp.code == Code.NOT_ACCEPTABLE  # a 1.0 device has no SenML


async def test_senml_cbor_read_vectors_1_1(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60)
    resp = await request(rd_server, device, GET, "/5/0/3")
    assert resp.opt.content_format == SENML_CBOR
    # [ {-2: "/5/0/3", 2: 0} ]
    assert resp.payload.hex() == "81" + "a2" + "21" + "66" + b"/5/0/3".hex() + "02" + "00"
    resp = await request(rd_server, device, GET, "/1/0")
    # [{-2:"/1/0/", 0:"0", 2:1}, {0:"1", 2:60}, {0:"6", 4:true}, {0:"7", 3:"U"}]
    expected = (
        "84"
        + "a3" + "21" + "65" + b"/1/0/".hex() + "00" + "6130" + "02" + "01"
        + "a2" + "00" + "6131" + "02" + "183c"
        + "a2" + "00" + "6136" + "04" + "f5"
        + "a2" + "00" + "6137" + "03" + "6155"
    )  # fmt: skip
    assert resp.payload.hex() == expected
    resp = await request(rd_server, device, GET, "/1/0/1", accept=SENML_JSON)
    assert json.loads(resp.payload) == [{"bn": "/1/0/1", "v": 60}]


async def test_read_errors(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60)
    assert (await request(rd_server, device, GET, "/3/7")).code == Code.NOT_FOUND
    assert (await request(rd_server, device, GET, "/3/0/4")).code == Code.METHOD_NOT_ALLOWED
    assert (await request(rd_server, device, GET, "/0/0")).code == Code.UNAUTHORIZED
    assert (await request(rd_server, device, GET, "/foo")).code == Code.NOT_FOUND
    assert (await request(rd_server, device, GET, "/32001/0/10", accept=TEXT)).code == Code.NOT_FOUND


# ---- writes, execute, create, delete ---------------------------------------------------------------


async def test_writes(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60)
    body = json.dumps([{"bn": "/1/0/", "n": "2", "v": 7}, {"n": "3", "v": 70}]).encode()
    assert (await request(rd_server, device, POST, "/1/0", body, cf=SENML_JSON)).code == Code.CHANGED
    resp = await request(rd_server, device, GET, "/1/0/3", accept=TEXT)
    assert resp.payload == b"70"
    assert (await request(rd_server, device, PUT, "/3/0/0", b"x", cf=TEXT)).code == Code.METHOD_NOT_ALLOWED
    assert (await request(rd_server, device, PUT, "/1/0/1", b"abc", cf=TEXT)).code == Code.BAD_REQUEST
    assert (await request(rd_server, device, PUT, "/1/0/1", b"1", cf=60000)).code == Code.UNSUPPORTED_CONTENT_FORMAT
    senml = cbor2.dumps([{-2: "/1/0/1", 2: 90}])
    assert (await request(rd_server, device, PUT, "/1/0/1", senml, cf=SENML_CBOR)).code == Code.CHANGED
    assert device.objects is not None and device.objects.get(LwM2MPath(1, 0, 1)) == 90


async def test_execute_create_delete(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lwm2m_version="1.0", lifetime=60)
    assert (await request(rd_server, device, POST, "/3/0/0")).code == Code.METHOD_NOT_ALLOWED
    assert (await request(rd_server, device, POST, "/5/0/2")).code == Code.METHOD_NOT_ALLOWED  # not Downloaded
    # Create /1/3: object-instance TLV (type 0x08: instance, 8-bit id, 1-byte length) around 4 resources.
    inner = bytes.fromhex("c10002" + "c1011e" + "c10600" + "c10755")
    payload = bytes([0x08, 0x03, len(inner)]) + inner
    resp = await request(rd_server, device, POST, "/1", payload, cf=TLV)
    assert resp.code == Code.CREATED and tuple(resp.opt.location_path) == ("1", "3")
    assert (await request(rd_server, device, GET, "/1/3/1", accept=TEXT)).payload == b"30"
    assert (await request(rd_server, device, DELETE, "/1/3")).code == Code.DELETED
    assert (await request(rd_server, device, GET, "/1/3")).code == Code.NOT_FOUND
    assert (await request(rd_server, device, DELETE, "/3/0")).code == Code.METHOD_NOT_ALLOWED


# ---- discover, attributes, observe, composite ------------------------------------------------------


async def test_discover_and_write_attributes(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60)
    resp = await request(rd_server, device, GET, "/5/0", accept=LINK)
    assert resp.opt.content_format == LINK
    assert resp.payload == (
        b"</5/0>,</5/0/0>,</5/0/1>,</5/0/2>,</5/0/3>,</5/0/5>,</5/0/6>,</5/0/7>,</5/0/8>;dim=1,</5/0/9>,</5/0/10>"
    )
    resp = await request(rd_server, device, PUT, "/5/0/3", query=("pmin=1", "pmax=30"))
    assert resp.code == Code.CHANGED
    resp = await request(rd_server, device, GET, "/5/0/3", accept=LINK)
    assert resp.payload == b"</5/0/3>;pmin=1;pmax=30"
    resp = await request(rd_server, device, PUT, "/5/0/3", query=("pmin=9", "pmax=3"))
    assert resp.code == Code.BAD_REQUEST
    resp = await request(rd_server, device, PUT, "/5/0/3", query=("bogus=1",))
    assert resp.code == Code.BAD_REQUEST
    resp = await request(rd_server, device, GET, "/32001", accept=LINK)
    assert resp.payload.startswith(b"</32001>,</32001/0>,</32001/0/0>,")


async def test_observe_notifies_on_change(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60)
    msg = Message(code=GET, uri=f"coap://127.0.0.1:{device.port}/5/0/3", observe=0)
    req = rd_server.context.request(msg)
    first = await asyncio.wait_for(req.response, 5)
    assert cbor2.loads(first.payload) == [{-2: "/5/0/3", 2: 0}]
    assert device.objects is not None
    device.objects.set(LwM2MPath(5, 0, 3), 1)
    notes = req.observation.__aiter__()
    note = await asyncio.wait_for(notes.__anext__(), 5)
    assert cbor2.loads(note.payload) == [{-2: "/5/0/3", 2: 1}]
    device.objects.set(LwM2MPath(5, 0, 5), 4)  # another resource: no notification for /5/0/3
    device.objects.set(LwM2MPath(5, 0, 3), 2)
    note = await asyncio.wait_for(notes.__anext__(), 5)
    assert cbor2.loads(note.payload) == [{-2: "/5/0/3", 2: 2}]
    req.observation.cancel()


async def test_observe_respects_pmin(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60)
    assert (await request(rd_server, device, PUT, "/5/0/3", query=("pmin=1",))).code == Code.CHANGED
    msg = Message(code=GET, uri=f"coap://127.0.0.1:{device.port}/5/0/3", observe=0)
    req = rd_server.context.request(msg)
    await asyncio.wait_for(req.response, 5)
    assert device.objects is not None
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    device.objects.set(LwM2MPath(5, 0, 3), 1)
    device.objects.set(LwM2MPath(5, 0, 3), 2)  # coalesced with the previous change
    note = await asyncio.wait_for(req.observation.__aiter__().__anext__(), 5)
    assert loop.time() - t0 >= 0.8
    assert cbor2.loads(note.payload) == [{-2: "/5/0/3", 2: 2}]
    req.observation.cancel()


async def test_read_composite(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60)
    body = cbor2.dumps([{0: "/3/0/0"}, {0: "/1/0/1"}, {0: "/32002/0/12"}])
    resp = await request(rd_server, device, FETCH, "/", body, cf=SENML_CBOR, accept=SENML_CBOR)
    assert resp.code == Code.CONTENT and resp.opt.content_format == SENML_CBOR
    records = cbor2.loads(resp.payload)
    values = {r.get(-2, "") + r.get(0, ""): r.get(3, r.get(2)) for r in records}  # absolute names (root pack)
    assert values == {"/3/0/0": "TinyMLaaS Sim", "/1/0/1": 60, "/32002/0/12": "no-model"}


async def test_write_composite_is_all_or_nothing(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    """One path of a Write-Composite that cannot be written and the device answers 4.xx with nothing changed."""
    device = await start(devices, rd_server, lifetime=60)
    objects = device.objects
    assert objects is not None

    def values() -> dict[str, object]:  # a resource the device does not hold yet reads as None
        return {p: objects.read(LwM2MPath.parse(p)).get(LwM2MPath.parse(p)) if objects.has(LwM2MPath.parse(p))
                else None for p in ("/1/0/1", "/3/0/14", "/1/0/6")}  # fmt: skip

    before = values()
    assert before["/3/0/14"] is None

    def pack(*records: tuple[str, int, object]) -> bytes:  # SenML-CBOR root pack: absolute names, label 2/3/4
        return cbor2.dumps([{0: name, label: value} for name, label, value in records])

    cases = [
        (pack(("/1/0/1", 2, 444), ("/3/0/14", 3, "+05:00"), ("/3/0/0", 3, "read-only")), Code.METHOD_NOT_ALLOWED),
        (pack(("/1/0/1", 2, 444), ("/3/7/14", 3, "+05:00")), Code.NOT_FOUND),  # no instance /3/7
        (pack(("/3/0/14", 3, "+05:00"), ("/1/0/1", 3, "not a number")), Code.BAD_REQUEST),
        (pack(("/1/0/6", 4, True), ("/1/0/99", 2, 1)), Code.NOT_FOUND),  # resource not in the model
        (pack(("/3/0/14", 3, "+05:00"), ("/5/0/3", 2, 2)), Code.METHOD_NOT_ALLOWED),  # State is read-only
        (pack(("/3/0/14", 3, "+05:00"), ("/5/0/2", 2, 1)), Code.BAD_REQUEST),  # Update holds no value
    ]
    for body, code in cases:
        resp = await request(rd_server, device, Code.iPATCH, "/", body, cf=SENML_CBOR)
        assert resp.code == code, (cbor2.loads(body), resp.code, resp.payload)
        assert values() == before, cbor2.loads(body)

    body = pack(("/1/0/1", 2, 444), ("/3/0/14", 3, "+05:00"), ("/1/0/6", 4, True))
    assert (await request(rd_server, device, Code.iPATCH, "/", body, cf=SENML_CBOR)).code == Code.CHANGED
    assert values() == {"/1/0/1": 444, "/3/0/14": "+05:00", "/1/0/6": True}


async def test_write_composite_refused_by_a_hook_writes_nothing(
    rd_server: RDServer, devices: list[SimulatedDevice]
) -> None:
    """A Package URI write the firmware refuses (4.05: update in progress) is met before any plain value."""
    device = await start(devices, rd_server, lifetime=60)
    assert device.objects is not None
    device.objects.set(LwM2MPath(5, 0, 3), 1)  # Downloading: a new URI is refused
    body = cbor2.dumps([{0: "/1/0/1", 2: 555}, {0: "/5/0/1", 3: "coap://127.0.0.1:9/fw/x"}])
    resp = await request(rd_server, device, Code.iPATCH, "/", body, cf=SENML_CBOR)
    assert resp.code == Code.METHOD_NOT_ALLOWED, resp.payload
    assert device.objects.get(LwM2MPath(1, 0, 1)) == 60


# ---- queue mode and loss ---------------------------------------------------------------------------


async def test_queue_mode_sleeps_and_wakes_with_an_update(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60, binding="UQ", queue_awake_s=0.4, queue_sleep_s=1.0)
    assert (await request(rd_server, device, GET, "/3/0/0", accept=TEXT)).code == Code.CONTENT
    for _ in range(100):
        if device.asleep:
            break
        await asyncio.sleep(0.05)
    assert device.asleep
    # A separate client: aiocoap keeps retransmitting the unanswered CON (NSTART=1 per peer), which would
    # hold back the next request of the same context.
    probe = await aiocoap.Context.create_client_context()
    try:
        msg = Message(code=GET, uri=f"coap://127.0.0.1:{device.port}/3/0/0")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(probe.request(msg).response, 0.5)
    finally:
        await probe.shutdown()
    for _ in range(100):
        if rd_server.rd.of("0.02", path_len=2):
            break
        await asyncio.sleep(0.05)
    assert rd_server.rd.of("0.02", path_len=2), "the device woke up with an Update"
    assert not device.asleep
    assert (await request(rd_server, device, GET, "/3/0/0", accept=TEXT, timeout=2)).payload == b"TinyMLaaS Sim"


async def test_requests_survive_packet_loss(rd_server: RDServer) -> None:
    # 20 % loss each way; seed 3 drops one incoming and one outgoing datagram of this exchange sequence
    # (determinstic: the loss draws follow the datagram order). CON retransmission recovers both.
    device = SimulatedDevice(DeviceConfig(endpoint="lossy", lifetime=60, faults=FaultConfig(loss_pct=20.0)), seed=3)
    try:
        await asyncio.wait_for(device.start(rd_server.uri), 20)
        for _ in range(4):
            resp = await request(rd_server, device, GET, "/3/0/0", accept=TEXT, timeout=20)
            assert resp.payload == b"TinyMLaaS Sim"
        assert device.link is not None
        assert device.link.dropped_in >= 1 and device.link.dropped_out >= 1
    finally:
        await device.stop()


async def test_slow_link_adds_latency(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60, faults=FaultConfig(delay_ms=300))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    resp = await request(rd_server, device, GET, "/3/0/0", accept=TEXT)
    assert resp.payload == b"TinyMLaaS Sim"
    assert loop.time() - t0 >= 0.3


async def test_stay_in_queue_mode_fault_forces_q(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    await start(devices, rd_server, lifetime=60, faults=FaultConfig(stay_in_queue_mode=True), queue_awake_s=5)
    (reg,) = rd_server.rd.of("0.02", path_len=1)
    assert reg.query[-1] == "Q"


async def test_pmax_sends_unchanged_value(rd_server: RDServer, devices: list[SimulatedDevice]) -> None:
    device = await start(devices, rd_server, lifetime=60)
    assert (await request(rd_server, device, PUT, "/3/0/9", query=("pmax=1",))).code == Code.CHANGED
    msg = Message(code=GET, uri=f"coap://127.0.0.1:{device.port}/3/0/9", observe=0)
    msg.opt.accept = TEXT
    req = rd_server.context.request(msg)
    await asyncio.wait_for(req.response, 5)
    note = await asyncio.wait_for(req.observation.__aiter__().__anext__(), 5)
    assert note.payload == b"100"  # battery level, unchanged: sent because pmax elapsed
    req.observation.cancel()


async def test_notifications_stored_while_asleep_arrive_after_wake(
    rd_server: RDServer, devices: list[SimulatedDevice]
) -> None:
    device = await start(devices, rd_server, lifetime=60, binding="UQ", queue_awake_s=0.5, queue_sleep_s=1.0)
    msg = Message(code=GET, uri=f"coap://127.0.0.1:{device.port}/5/0/3", observe=0)
    msg.opt.accept = TEXT
    req = rd_server.context.request(msg)
    assert (await asyncio.wait_for(req.response, 5)).payload == b"0"
    for _ in range(100):
        if device.asleep:
            break
        await asyncio.sleep(0.05)
    assert device.asleep and device.objects is not None
    device.objects.set(LwM2MPath(5, 0, 3), 1)  # changes while the radio is off
    updates = len(rd_server.rd.of("0.02", path_len=2))
    note = await asyncio.wait_for(req.observation.__aiter__().__anext__(), 10)
    assert note.payload == b"1"
    assert len(rd_server.rd.of("0.02", path_len=2)) > updates  # it came after the wake-up Update
    req.observation.cancel()
