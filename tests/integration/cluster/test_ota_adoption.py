"""An OTA job survives the death of the node running it: two real ``serve`` nodes on one PostgreSQL database, a
push to a device held by node A, SIGKILL of A mid-delivery, the device registers again through node B (as the
load balancer would send it there), and B adopts the job (one conditional update), resumes it from the device's
own state and finishes it: one job row, owned by B, SUCCEEDED; the device installed the image exactly once. The
image was uploaded through A and B pushes it from the shared store. When A is alive but the device moved to B,
B adopts the job all the same and A, whose next write no longer applies, stops its copy."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig, FaultConfig
from tests.support.nodes import start_node
from tests.support.postgres import drop_pg_database, make_pg_database

ENV = {"TINYMLAAS_OTA__BLOCK_SIZE": "256", "TINYMLAAS_OTA__RETRY_BACKOFF_S": "0.2",
       "TINYMLAAS_OTA__POLL_INTERVAL_S": "0.5"}


async def _status(http: httpx.AsyncClient, url: str, ep: str) -> dict[str, Any]:
    r = await http.get(f"{url}/api/devices/{ep}/update")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_job_of_a_killed_node_is_adopted_and_finished_once(tmp_path: Path) -> None:
    dsn = await make_pg_database()
    a = await start_node(tmp_path / "a", dsn, ENV)
    b = await start_node(tmp_path / "b", dsn, ENV)
    dev = SimulatedDevice(DeviceConfig(endpoint="adopt-1", accept_raw_firmware=True,
                                       faults=FaultConfig(delay_ms=15)))  # a slow link: the push takes seconds
    image = b"FWIMG\x00" + os.urandom(40_000)
    try:
        assert a.token is not None
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {a.token}"}, timeout=30) as http:
            await dev.start(f"coap://127.0.0.1:{a.coap_port}")
            up = await http.post(f"{a.url}/api/packages", params={"kind": "firmware", "version": "2"}, content=image)
            assert up.status_code == 201, up.text
            sha = up.json()["sha256"]
            started = await http.post(f"{a.url}/api/devices/adopt-1/update", json={"firmware": sha, "method": "push"})
            assert started.status_code == 202, started.text
            job_id = started.json()["job"]
            for _ in range(200):  # mid-delivery: some blocks are on the device, most are not
                job = (await _status(http, a.url, "adopt-1"))["job"]
                if job["phase"] == "delivering" and job["progress"].get("bytes", 0) >= 2048:
                    break
                await asyncio.sleep(0.05)
            assert job["phase"] == "delivering" and job["progress"]["bytes"] < len(image), job
            await a.kill()

            await dev.stop(deregister=False)  # the device's next datagrams reach b
            await dev.start(f"coap://127.0.0.1:{b.coap_port}")
            for _ in range(600):
                job = (await _status(http, b.url, "adopt-1"))["job"]
                if job["phase"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert job["id"] == job_id and job["phase"] == "succeeded", job
        assert dev.firmware is not None and dev.firmware.installs == 1
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT id, phase, node_id FROM ota_jobs WHERE endpoint = 'adopt-1'")
            notes = [r["note"] for r in await conn.fetch(
                "SELECT note FROM ota_job_history WHERE job_id = $1 ORDER BY id", job_id)]
        finally:
            await conn.close()
        assert [(r["id"], r["phase"], r["node_id"]) for r in rows] == [(job_id, "succeeded", b.node_id)]
        assert any(n.startswith("resumed from delivering") for n in notes), notes
        assert notes.count("Update Result 1") == 1, notes
    finally:
        await dev.stop(deregister=False)
        await a.kill()
        await b.kill()
        await drop_pg_database(dsn)


async def test_job_moves_with_its_device_and_the_old_node_stops(tmp_path: Path) -> None:
    dsn = await make_pg_database()
    a = await start_node(tmp_path / "a", dsn, {**ENV, "TINYMLAAS_LOGGING__LEVEL": "info",
                                               "TINYMLAAS_SERVER__REQUEST_TIMEOUT_S": "3"})
    b = await start_node(tmp_path / "b", dsn, ENV)
    dev = SimulatedDevice(DeviceConfig(endpoint="move-1", accept_raw_firmware=True,
                                       faults=FaultConfig(delay_ms=15)))
    image = b"FWIMG\x00" + os.urandom(40_000)
    try:
        assert a.token is not None
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {a.token}"}, timeout=30) as http:
            await dev.start(f"coap://127.0.0.1:{a.coap_port}")
            up = await http.post(f"{a.url}/api/packages", params={"kind": "firmware"}, content=image)
            sha = up.json()["sha256"]
            started = await http.post(f"{a.url}/api/devices/move-1/update", json={"firmware": sha, "method": "push"})
            assert started.status_code == 202, started.text
            job_id = started.json()["job"]
            for _ in range(200):
                job = (await _status(http, a.url, "move-1"))["job"]
                if job["phase"] == "delivering" and job["progress"].get("bytes", 0) >= 2048:
                    break
                await asyncio.sleep(0.05)
            assert job["phase"] == "delivering", job

            await dev.stop(deregister=False)  # a stays up; the device now talks to b
            await dev.start(f"coap://127.0.0.1:{b.coap_port}")
            for _ in range(600):
                job = (await _status(http, b.url, "move-1"))["job"]
                if job["phase"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert job["id"] == job_id and job["phase"] == "succeeded", job
            log = tmp_path / "a.log"
            for _ in range(300):  # a's push to the device's old socket fails; its next write finds b the owner
                if "ota.job_lost" in log.read_text():
                    break
                await asyncio.sleep(0.1)
            assert "ota.job_lost" in log.read_text()
        assert dev.firmware is not None and dev.firmware.installs == 1
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT phase, node_id FROM ota_jobs WHERE endpoint = 'move-1'")
            last = await conn.fetchval(
                "SELECT to_phase FROM ota_job_history WHERE job_id = $1 ORDER BY id DESC LIMIT 1", job_id)
        finally:
            await conn.close()
        assert [(r["phase"], r["node_id"]) for r in rows] == [("succeeded", b.node_id)]
        assert last == "succeeded"  # a wrote nothing after b finished
    finally:
        await dev.stop(deregister=False)
        await a.kill()
        await b.kill()
        await drop_pg_database(dsn)
