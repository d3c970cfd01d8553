"""Plain firmware images: delivered unchanged, confirmed by Update Result 1 across the device's re-registration."""

from __future__ import annotations

import asyncio
import os

import pytest

from lwm2m_server.protocol.paths import LwM2MPath
from tests.integration.ota.conftest import Harness


@pytest.mark.parametrize("method", ["push", "pull"])
async def test_plain_firmware_survives_reregistration(harness: Harness, method: str) -> None:
    dev = await harness.device(f"fw-{method}", accept_raw_firmware=True, firmware_version="1.0.0")
    image = b"FWIMG\x00" + os.urandom(6000)  # not a CBOR map: a raw image, not a model package
    info = await harness.ota.add_package(image, "firmware", name="app.bin", version="1.0.1")
    regs_before = dev.registrations
    job_id = await harness.ota.start_update(dev.endpoint, info.sha256, method=method)
    record = await asyncio.wait_for(harness.ota.wait(job_id), 20)
    assert record.phase == "succeeded", record.to_json()
    assert record.method == method
    assert dev.registrations > regs_before  # it rebooted into the new image and registered again
    assert dev.objects is not None
    assert dev.objects.get(LwM2MPath(3, 0, 3)) != "1.0.0"
    history = [h["to_phase"] for h in await harness.ota.history(job_id)]
    assert history[-3:] == ["updating", "confirming", "succeeded"]
