"""``{"model": "digits-cnn"}``: compiled for the device's class (real TensorFlow), signed, delivered, confirmed."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from compilers.planner import CompileService
from lwm2m_server.compiling import Compiling
from lwm2m_server.ota.builds import server_public_key
from tests.integration.ota.conftest import Harness
from tests.support.auth import authorized_api


@pytest.mark.slow
async def test_model_name_compiled_for_device_class_and_installed(harness: Harness) -> None:
    data_dir = harness.server.settings.server.data_dir
    harness.ota.compiling = Compiling(harness.server.settings,
                                      CompileService(harness.tmp_path / "cache", workers=1, zoo_epochs=1))
    public_key = await asyncio.to_thread(server_public_key, data_dir)
    dev = await harness.device("zoo-dev", server_public_key=public_key, lwm2m_version="1.1")
    async with authorized_api(harness.server, ota=harness.ota) as runner:  # noqa: SIM117
        async with httpx.AsyncClient(base_url=runner.url, timeout=600, headers=runner.auth.headers) as http:
            started = await http.post("/api/devices/zoo-dev/update", json={"model": "digits-cnn", "method": "pull"})
            assert started.status_code == 202, started.text
            record = await asyncio.wait_for(harness.ota.wait(started.json()["job"]), 60)
            assert record.phase == "succeeded", record.to_json()
            info = await harness.ota.packages.get(record.package_sha256)
            assert info is not None and info.kind == "model" and info.name == "digits-cnn"
            assert record.progress["model_sha256"] == info.payload_sha256 and record.progress["health"] == "ok"
            unknown = await http.post("/api/devices/zoo-dev/update", json={"model": "no-such-model"})
            assert unknown.status_code == 404
    assert dev.objects is not None
