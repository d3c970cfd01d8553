"""Signed model packages into the real TFLite Micro runtime of the simulator, confirmed through /32002/0."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import pytest

from lwm2m_server.protocol.paths import LwM2MPath
from simulator.profiles import FaultConfig, HardwareProfile
from tests.integration.ota.conftest import Harness
from tests.integration.ota.models import KWS, signed_kws_package

KWS_SHA = hashlib.sha256(KWS.read_bytes()).hexdigest() if KWS.exists() else ""
pytestmark = pytest.mark.skipif(not KWS.exists(), reason="MLPerf Tiny models not available")


async def model_job(h: Harness, endpoint: str, method: str | None, **config: object) -> tuple:  # type: ignore[type-arg]
    blob, public_key = signed_kws_package(h.server.settings.server.data_dir)
    dev = await h.device(endpoint, server_public_key=public_key, **config)
    info = await h.ota.add_package(blob, "model")
    assert info.payload_sha256 == KWS_SHA and info.kind == "model"
    job_id = await h.ota.start_update(dev.endpoint, info.sha256, method=method)
    return dev, info, job_id


@pytest.mark.parametrize("method", ["push", "pull"])
@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_model_install_confirmed_through_32002(harness: Harness, method: str, version: str) -> None:
    dev, _info, job_id = await model_job(harness, f"m-{method}-{version}", method, lwm2m_version=version)
    record = await asyncio.wait_for(harness.ota.wait(job_id), 20)
    assert record.phase == "succeeded", record.to_json()
    assert record.method == method
    assert record.progress["model_sha256"] == KWS_SHA and record.progress["health"] == "ok"
    assert dev.objects is not None and dev.objects.get(LwM2MPath(32002, 0, 2)) == KWS_SHA


async def test_device_without_a_result_after_updating_is_verified_through_32002(harness: Harness) -> None:
    """Idle with Update Result 0 after Updating: the tracker cannot tell, so the job checks /32002/0 (before:
    it waited for a result until its silence timeout)."""
    dev, _info, job_id = await model_job(harness, "forgetful", "push", faults=FaultConfig(forget_result=True))
    record = await asyncio.wait_for(harness.ota.wait(job_id), 10)  # well inside the harness' 15 s timeout
    assert record.phase == "succeeded", record.to_json()
    assert record.progress["model_sha256"] == KWS_SHA and record.progress["fw_result"] == 0
    notes = {h["to_phase"]: h["note"] for h in await harness.ota.history(job_id)}
    assert notes["confirming"] == "no Update Result after updating"
    assert dev.objects is not None and dev.objects.get(LwM2MPath(5, 0, 5)) == 0


async def test_corrupted_payload_gives_result_5_then_retry_succeeds(harness: Harness) -> None:
    dev, _info, job_id = await model_job(harness, "corrupt", "pull", faults=FaultConfig(corrupt_payload=True))
    with harness.server.events.subscribe(types={"ota.retry_wait"}, endpoint=dev.endpoint) as sub:
        event = await sub.get(timeout=15)
    assert event.data["note"].startswith("update result 5")
    clean = replace(dev.config, faults=FaultConfig())  # the link is clean again for the retry
    dev.config = clean
    assert dev.firmware is not None
    dev.firmware.config = clean
    record = await asyncio.wait_for(harness.ota.wait(job_id), 20)
    assert record.phase == "succeeded", record.to_json()
    assert record.attempt == 2
    assert record.progress["model_sha256"] == KWS_SHA


async def test_arena_too_small_in_tflm_is_not_fitting(harness: Harness) -> None:
    tiny = HardwareProfile(ram_free_ml=2 * 1024)
    _dev, _info, job_id = await model_job(harness, "tiny-arena", "push", profile=tiny)
    record = await asyncio.wait_for(harness.ota.wait(job_id), 20)
    assert record.phase == "failed", record.to_json()
    assert record.result in (3, 8)
    assert record.cause == "not_fitting" and record.attempt == 1
    assert "not fitting" in record.summary


async def test_package_signed_by_another_key_is_integrity_failure(harness: Harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from compilers import keys

    other = keys.public_key_bytes(keys.load_or_create_signing_key(tmp_path / "other"))
    blob, _ = signed_kws_package(harness.server.settings.server.data_dir)
    dev = await harness.device("wrong-key", server_public_key=other)
    info = await harness.ota.add_package(blob, "model")
    job_id = await harness.ota.start_update(dev.endpoint, info.sha256, method="push", max_retries=1)
    record = await asyncio.wait_for(harness.ota.wait(job_id), 20)
    assert record.phase == "failed" and record.result == 5
    assert record.cause == "retries_exhausted" and record.attempt == 2
