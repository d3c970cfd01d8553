"""Every device-scoped REST call reaches the device through any node: two real ``serve`` nodes on one PostgreSQL
database, a device whose session is with node A, and write, execute (with arguments), observe and its cancel,
a composite read, and OTA start and status all sent to node B's REST API. B checks the caller's token (a viewer
may not write through B either), forwards the request as it came, A replays it and the device sees it; a body
too big to forward is a clear 413; B's answer names A in ``X-TinyMLaaS-Node``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import httpx

from lwm2m_server.protocol.paths import LwM2MPath
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.support.nodes import start_node
from tests.support.postgres import drop_pg_database, make_pg_database


async def test_write_execute_observe_and_ota_through_the_other_node(tmp_path: Path) -> None:
    dsn = await make_pg_database()
    a = await start_node(tmp_path / "a", dsn)
    b = await start_node(tmp_path / "b", dsn)
    dev = SimulatedDevice(DeviceConfig(endpoint="fa-1", lwm2m_version="1.1", accept_raw_firmware=True))
    try:
        assert a.token is not None
        await dev.start(f"coap://127.0.0.1:{a.coap_port}")
        assert dev.objects is not None
        executed: list[str] = []
        dev.objects.on_execute(32002, 13, lambda _path, args: executed.append(args))
        async with httpx.AsyncClient(base_url=b.url, headers={"Authorization": f"Bearer {a.token}"},
                                     timeout=30) as via_b:
            for _ in range(50):  # a's write-behind commits the registration within milliseconds
                if (await via_b.get("/api/devices/fa-1/3/0/0")).status_code == 200:
                    break
                await asyncio.sleep(0.1)

            wrote = await via_b.put("/api/devices/fa-1/3/0/13", json=1_800_000_000)
            assert wrote.status_code == 200, wrote.text
            assert wrote.json() == {"endpoint": "fa-1", "path": "/3/0/13", "operation": "write"}
            assert wrote.headers["x-tinymlaas-node"] == a.node_id
            assert dev.objects.get(LwM2MPath(3, 0, 13)) == 1_800_000_000

            ran = await via_b.post("/api/devices/fa-1/32002/0/13", content="0='fast',1",
                                   headers={"content-type": "text/plain"})
            assert ran.status_code == 200 and ran.json()["operation"] == "execute", ran.text
            assert executed == ["0='fast',1"]

            observed = await via_b.post("/api/devices/fa-1/3/0/9/observe")
            assert observed.status_code == 200 and "value" in observed.json(), observed.text
            assert dev.site is not None
            battery = LwM2MPath(3, 0, 9)
            assert battery in [o.path for o in dev.site.observations.active]  # the observation lives on a
            cancelled = await via_b.delete("/api/devices/fa-1/3/0/9/observe")
            assert cancelled.status_code == 200, cancelled.text
            again = await via_b.delete("/api/devices/fa-1/3/0/9/observe")  # a's table no longer has it
            assert again.status_code == 404 and again.json()["error"] == "not_found", again.text

            composite = await via_b.post("/api/devices/fa-1/composite/read", json={"paths": ["/3/0/0", "/3/0/13"]})
            assert composite.status_code == 200, composite.text
            assert "TinyMLaaS Sim" in composite.text

            device_error = await via_b.get("/api/devices/fa-1/3/0/77")  # the device's own 4.04, through a
            assert device_error.status_code == 502 and device_error.json()["error"] == "4.04"
            too_big = await via_b.put("/api/devices/fa-1/3/0/15", json=os.urandom(6000).hex())  # incompressible
            assert too_big.status_code == 413 and too_big.json()["error"] == "too_large", too_big.text
            assert a.node_id in too_big.json()["message"]

            viewer = await via_b.post("/api/tokens", json={"role": "viewer", "name": "watcher"})
            assert viewer.status_code == 201, viewer.text
            refused = await via_b.put("/api/devices/fa-1/3/0/13", json=1,
                                      headers={"Authorization": f"Bearer {viewer.json()['token']}"})
            assert refused.status_code == 403, refused.text  # checked by b, never forwarded
            assert dev.objects.get(LwM2MPath(3, 0, 13)) == 1_800_000_000
            no_token = await httpx.AsyncClient(base_url=b.url).get("/api/devices/fa-1/3/0/0")
            assert no_token.status_code == 401

            image = b"FWIMG\x00" + os.urandom(5000)
            up = await via_b.post("/api/packages", params={"kind": "firmware", "version": "3"}, content=image)
            assert up.status_code == 201, up.text
            sha = up.json()["sha256"]
            started = await via_b.post("/api/devices/fa-1/update", json={"firmware": sha, "method": "push"})
            assert started.status_code == 202, started.text
            job_id = started.json()["job"]
            for _ in range(300):
                status = await via_b.get("/api/devices/fa-1/update")
                assert status.status_code == 200, status.text
                if status.json()["job"]["phase"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert status.json()["job"]["id"] == job_id and status.json()["job"]["phase"] == "succeeded"
            assert status.headers["x-tinymlaas-node"] == a.node_id
            assert status.json()["job"]["progress"]["bytes"] == len(image)  # a's live progress
        assert dev.firmware is not None and dev.firmware.installs == 1
        conn = await asyncpg.connect(dsn)
        try:
            owner = await conn.fetchval("SELECT node_id FROM ota_jobs WHERE id = $1", job_id)
        finally:
            await conn.close()
        assert owner == a.node_id  # a, holding the device, runs the job b was asked for
    finally:
        await dev.stop(deregister=False)
        await a.kill()
        await b.kill()
        await drop_pg_database(dsn)
