"""A REST read arriving at node A for a device held by node B (two real ``serve`` processes on one PostgreSQL
database) is carried out by B over PostgreSQL LISTEN/NOTIFY and answered at A exactly as B would answer it;
device errors come back as they are; once B is SIGKILLed, A answers 504 JSON instead of waiting forever; a
device A knows nothing about is still a 404."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.support.nodes import start_node
from tests.support.postgres import drop_pg_database, make_pg_database


async def test_read_through_the_other_node_and_504_when_the_owner_is_gone(tmp_path: Path) -> None:
    dsn = await make_pg_database()
    env = {"TINYMLAAS_CLUSTER__FORWARD_TIMEOUT_S": "3"}
    a = await start_node(tmp_path / "a", dsn, env)
    b = await start_node(tmp_path / "b", dsn, env)
    dev = SimulatedDevice(DeviceConfig(endpoint="fwd-1", lwm2m_version="1.1", manufacturer="Acme Forwarded"))
    try:
        assert a.token is not None
        headers = {"Authorization": f"Bearer {a.token}"}
        await dev.start(f"coap://127.0.0.1:{b.coap_port}")  # the device's session is with b
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:
            for _ in range(50):  # b's write-behind commits the registration within milliseconds
                direct = await http.get(f"{b.url}/api/devices/fwd-1/3/0/0")
                if direct.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert direct.status_code == 200, direct.text
            via_a = await http.get(f"{a.url}/api/devices/fwd-1/3/0/0")
            assert via_a.status_code == 200, via_a.text
            assert via_a.json() == direct.json() and "Acme Forwarded" in via_a.text
            assert via_a.headers["x-tinymlaas-node"] == b.node_id
            text = await http.get(f"{a.url}/api/devices/fwd-1/3/0/0", params={"format": "text"})
            assert text.status_code == 200 and text.json() == direct.json()
            missing = await http.get(f"{a.url}/api/devices/fwd-1/3/0/77")  # the device's own 4.04, via b
            assert missing.status_code == 502 and missing.json()["error"] == "4.04", missing.text
            unknown = await http.get(f"{a.url}/api/devices/nobody/3/0/0")
            assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"

            await b.kill()
            started = time.monotonic()
            gone = await http.get(f"{a.url}/api/devices/fwd-1/3/0/0")  # b's heartbeat is fresh: asked, no answer
            assert gone.status_code == 504 and gone.json()["error"] == "owner_unreachable", gone.text
            assert time.monotonic() - started < 6
            await asyncio.sleep(1.6)  # > node timeout: a no longer asks a dead node, it answers at once
            started = time.monotonic()
            dead = await http.get(f"{a.url}/api/devices/fwd-1/3/0/0")
            assert dead.status_code == 504 and "not alive" in dead.json()["message"]
            assert time.monotonic() - started < 1.0
    finally:
        await dev.stop(deregister=False)
        await a.kill()
        await b.kill()
        await drop_pg_database(dsn)
