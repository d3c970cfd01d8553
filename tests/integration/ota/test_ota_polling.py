"""The re-read of /5/0 during a job is a fallback for lost notifications, over real UDP with simulated devices.

A device that visibly progresses (blocks served, State notifications arriving) is not read again while it does;
one whose notifications are lost is re-read once it has been quiet for the poll interval, and still finishes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lwm2m_server.protocol import coapmsg
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.device import SimulatedDevice
from simulator.link import Link
from simulator.profiles import FaultConfig
from tests.integration.ota.conftest import Harness, start_harness

POLL_S = 0.3
GET = 1


def spy_fw_reads(dev: SimulatedDevice) -> list[float]:
    """Wall-clock times of the plain GET /5/0 requests the device receives (reads, not observe requests)."""
    reads: list[float] = []

    def rule(direction: str, data: bytes) -> bool:
        try:
            msg = coapmsg.decode(data)
        except coapmsg.CoapFormatError:
            return False
        observed = bool(msg.option_values(coapmsg.OBSERVE))
        path = [v.decode() for v in msg.option_values(coapmsg.URI_PATH)]
        if direction == "in" and msg.code == GET and not observed and path == ["5", "0"]:
            reads.append(time.time())
        return False

    assert isinstance(dev.link, Link)
    dev.link.drop = rule
    return reads


async def pull_job(h: Harness, dev: SimulatedDevice) -> tuple[dict[str, float], str]:
    """Pull a 3,000-byte image in 16-byte blocks over a slow link; (phase -> first entry time, final phase)."""
    info = await h.ota.add_package(b"FWIMG\x00" + os.urandom(2994), "firmware", version="2")
    job_id = await h.ota.start_update(dev.endpoint, info.sha256, method="pull")
    record = await asyncio.wait_for(h.ota.wait(job_id), 60)
    entered: dict[str, float] = {}
    for row in await h.ota.history(job_id):
        entered.setdefault(row["to_phase"], row["ts"])
    return entered, str(record.phase)


@pytest.fixture
async def polled(tmp_path: Path) -> AsyncIterator[Harness]:
    server, ota = await start_harness(tmp_path, poll_interval_s=POLL_S)
    h = Harness(tmp_path, server, ota)
    try:
        yield h
    finally:
        for dev in h.devices:
            await dev.stop(deregister=False)
        await ota.stop()
        await server.stop()


async def test_progressing_device_is_not_re_read(polled: Harness) -> None:
    dev = await polled.device("polled-busy", accept_raw_firmware=True, block_size=16,
                              faults=FaultConfig(delay_ms=10.0))  # fmt: skip
    reads = spy_fw_reads(dev)
    entered, phase = await pull_job(polled, dev)
    assert phase == "succeeded"
    downloading = entered["updating"] - entered["downloading"]
    assert downloading > 4 * POLL_S, f"download too quick to tell ({downloading:.2f}s)"
    during = [t for t in reads if entered["downloading"] < t < entered["updating"]]
    # a fixed-interval poll would have read ~downloading / POLL_S times here
    assert during == [], f"{len(during)} reads of /5/0 while the device was pulling for {downloading:.1f}s"


async def test_device_with_lost_notifications_is_re_read_and_finishes(polled: Harness) -> None:
    dev = await polled.device("polled-mute", accept_raw_firmware=True, block_size=16,
                              faults=FaultConfig(delay_ms=2.0))  # fmt: skip
    reads = spy_fw_reads(dev)
    fw = LwM2MPath(5, 0)
    assert dev.site is not None
    observations = dev.site.observations

    async def observed() -> None:  # the server observes /5/0/3 and /5/0/5 after registering the device
        while len([o for o in observations.active if fw.is_prefix_of(o.path)]) < 2:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(observed(), 10)
    assert observations.forget(fw) == 2  # from now on the device never notifies a State change
    entered, phase = await pull_job(polled, dev)
    assert phase == "succeeded"
    # Downloaded was only learnt by a re-read after the download went quiet: the job executed after it
    after_download = [t for t in reads if entered["downloading"] < t < entered["updating"]]
    assert after_download, "the server executed /5/0/2 without having read that the device downloaded"
