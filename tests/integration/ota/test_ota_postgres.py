"""The OTA service on the PostgreSQL store: a real simulated device updated over loopback, then a restarted
server on the same database knows the job, its history and the package (what a second node would read)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lwm2m_server.config import Settings
from lwm2m_server.ota.service import OtaService
from lwm2m_server.server import LwM2MServer
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.integration.ota.conftest import make_settings
from tests.support.postgres import drop_pg_database, make_pg_database


def _on_postgres(tmp_path: Path, dsn: str) -> Settings:
    s = make_settings(tmp_path)
    return s.model_copy(update={"store": s.store.model_copy(update={"backend": "postgres", "dsn": dsn})})


@pytest.mark.parametrize("method", ["push", "pull"])
async def test_firmware_update_on_postgres_and_restart(tmp_path: Path, method: str) -> None:
    dsn = await make_pg_database()
    server = LwM2MServer(_on_postgres(tmp_path, dsn))
    ota = OtaService(server)
    dev = SimulatedDevice(DeviceConfig(endpoint=f"pg-fw-{method}", accept_raw_firmware=True,
                                       firmware_version="1.0.0"))
    try:
        await server.start()
        await ota.start()
        assert type(server.store).__name__ == "PostgresStore"
        await dev.start(f"coap://127.0.0.1:{server.coap_port}")
        info = await ota.add_package(b"FWIMG\x00" + os.urandom(3000), "firmware", name="app.bin", version="2")
        job_id = await ota.start_update(dev.endpoint, info.sha256, method=method)
        record = await asyncio.wait_for(ota.wait(job_id), 30)
        assert record.phase == "succeeded", record.to_json()
        history = [h["to_phase"] for h in await ota.history(job_id)]
        assert history[-3:] == ["updating", "confirming", "succeeded"]
        await dev.stop(deregister=False)
        await ota.stop()
        await server.stop()

        again = LwM2MServer(_on_postgres(tmp_path, dsn))
        ota2 = OtaService(again)
        await again.start()
        await ota2.start()
        try:
            assert dev.endpoint in again.registry  # the registration was committed before the stop
            back = await ota2.get_job(job_id)
            assert back is not None and back.phase == "succeeded" and back.method == method
            assert [h["to_phase"] for h in await ota2.history(job_id)] == history
            assert await ota2.packages.get(info.sha256) == info
        finally:
            await ota2.stop()
            await again.stop()
    finally:
        await dev.stop(deregister=False)
        await ota.stop()
        await server.stop()
        await drop_pg_database(dsn)
