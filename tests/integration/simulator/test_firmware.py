"""Object 5 on a simulated device, driven by a plain aiocoap client (the server's OTA logic is tested
elsewhere): push and pull, install into the real TFLite Micro runtime, and every failure result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiocoap
import pytest
from aiocoap import Code

from lwm2m_server.protocol.paths import LwM2MPath
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig, FaultConfig, HardwareProfile
from tests.integration.simulator.conftest import RDServer
from tests.integration.simulator.fwkit import (
    FileResource,
    SignedModel,
    execute,
    kws_package,
    push,
    read_text,
    record_states,
    wait_for,
    write_uri,
)

pytestmark = pytest.mark.timeout(90)

IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3


@dataclass
class Bench:
    rd: RDServer
    model: SignedModel
    devices: list[SimulatedDevice]
    files: dict[str, FileResource]

    @property
    def ctx(self) -> aiocoap.Context:
        return self.rd.context

    async def device(self, **kw: object) -> SimulatedDevice:
        kw.setdefault("endpoint", f"fw{len(self.devices)}")
        kw.setdefault("server_public_key", self.model.public_key)
        kw.setdefault("lifetime", 60)
        device = SimulatedDevice(DeviceConfig(**kw), seed=5)  # type: ignore[arg-type]
        self.devices.append(device)
        await asyncio.wait_for(device.start(self.rd.uri), 10)
        return device

    def serve(self, data: bytes, name: str = "pkg") -> tuple[FileResource, str]:
        """Serve ``data`` at /fw/<name> on the test's context; returns the resource and its URI."""
        resource = FileResource(data)
        self.files[name] = resource
        return resource, f"{self.rd.uri}/fw/{name}"


@pytest.fixture
async def bench(rd_server: RDServer) -> AsyncIterator[Bench]:
    files: dict[str, FileResource] = {}
    rd = rd_server.rd
    original = rd.render

    async def render(request: aiocoap.Message) -> aiocoap.Message:
        path = tuple(request.opt.uri_path)
        if len(path) == 2 and path[0] == "fw" and path[1] in files:
            return await files[path[1]].render(request)
        return await original(request)

    async def needs_blockwise_assembly(request: aiocoap.Message) -> bool:
        return tuple(request.opt.uri_path)[:1] != ("fw",)  # the file resource does its own Block2

    rd.render = render  # type: ignore[method-assign]
    rd.needs_blockwise_assembly = needs_blockwise_assembly  # type: ignore[method-assign]
    b = Bench(rd_server, kws_package(), [], files)
    yield b
    for d in b.devices:
        await d.stop()


async def assert_model_installed(b: Bench, device: SimulatedDevice) -> None:
    assert await read_text(b.ctx, device.port, "/32002/0/2") == b.model.sha256
    assert await read_text(b.ctx, device.port, "/32002/0/12") == "ok"
    assert await read_text(b.ctx, device.port, "/32002/0/0") == "kws"
    assert await read_text(b.ctx, device.port, "/32002/0/5") == "1x49x10x1"  # from the real TFLM interpreter
    assert await read_text(b.ctx, device.port, "/32002/0/7") == "1x12"
    assert int(await read_text(b.ctx, device.port, "/32002/0/9")) == 1
    assert int(await read_text(b.ctx, device.port, "/32002/0/10")) > 0  # latency µs
    assert len((await read_text(b.ctx, device.port, "/32002/0/11")).split(",")) == 12
    assert await read_text(b.ctx, device.port, "/5/0/6") == "kws"


# ---- push ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_push_then_execute_installs_into_tflm(bench: Bench, version: str) -> None:
    device = await bench.device(lwm2m_version=version)
    states = record_states(device)
    log = await push(bench.ctx, device.port, bench.model.package, szx=6)
    assert log.codes[-1] == "2.04" and set(log.codes[:-1]) == {"2.31"}
    assert await read_text(bench.ctx, device.port, "/5/0/3") == "2"
    assert (await execute(bench.ctx, device.port)).code == Code.CHANGED
    await wait_for(device, IDLE, 1)
    assert states == [DOWNLOADING, DOWNLOADED, UPDATING, IDLE]
    await assert_model_installed(bench, device)


async def test_push_any_block_size_and_forced_smaller_szx(bench: Bench) -> None:
    device = await bench.device(force_block1_size=64)
    log = await push(bench.ctx, device.port, bench.model.package, szx=6)
    assert log.szx[0] == 6 and set(log.szx[1:]) == {2}  # 1024 first, then the device's 64
    await wait_for(device, DOWNLOADED)
    assert device.firmware is not None and bytes(device.firmware.package) == bench.model.package
    small = await bench.device()
    log = await push(bench.ctx, small.port, bench.model.package[:4000], szx=0)  # 16-byte blocks
    assert len(log.codes) == 250 and log.codes[-1] == "2.04"
    assert small.firmware is not None and bytes(small.firmware.package) == bench.model.package[:4000]


async def test_push_413_with_size1_for_blocks_bigger_than_the_device_takes(bench: Bench) -> None:
    device = await bench.device(max_block1_size=256)
    log = await push(bench.ctx, device.port, bench.model.package, szx=6)
    assert log.codes == ["4.13"] and log.size1 == 256
    assert await read_text(bench.ctx, device.port, "/5/0/3") == "0"  # nothing started
    log = await push(bench.ctx, device.port, bench.model.package, szx=4)
    assert log.codes[-1] == "2.04"


async def test_skip_downloading_state_on_push(bench: Bench) -> None:
    device = await bench.device(skip_downloading_state=True, lwm2m_version="1.0")
    states = record_states(device)
    await push(bench.ctx, device.port, bench.model.package, szx=5)
    assert states == [DOWNLOADED]  # 0 jumps straight to 2


async def test_package_bigger_than_flash_is_result_2(bench: Bench) -> None:
    device = await bench.device(profile=HardwareProfile(flash_free=32 * 1024))
    log = await push(bench.ctx, device.port, bench.model.package, szx=6)
    assert log.codes == ["4.13"] and log.size1 == 32 * 1024  # Size1 = what the device can take
    await wait_for(device, IDLE, 2)


async def test_corrupted_payload_is_result_5(bench: Bench) -> None:
    device = await bench.device(faults=FaultConfig(corrupt_payload=True))
    await push(bench.ctx, device.port, bench.model.package, szx=6)
    await wait_for(device, DOWNLOADED)
    assert (await execute(bench.ctx, device.port)).code == Code.CHANGED
    await wait_for(device, IDLE, 5)
    assert await read_text(bench.ctx, device.port, "/32002/0/12") == "no-model"


async def test_wrong_signing_key_is_result_5(bench: Bench) -> None:
    device = await bench.device(server_public_key=bytes(32))
    await push(bench.ctx, device.port, bench.model.package, szx=6)
    await execute(bench.ctx, device.port)
    await wait_for(device, IDLE, 5)


async def test_arena_too_small_in_real_tflm_is_result_3(bench: Bench) -> None:
    device = await bench.device(profile=HardwareProfile(ram_total=16 * 1024, ram_free_ml=8 * 1024))
    await push(bench.ctx, device.port, bench.model.package, szx=6)
    await execute(bench.ctx, device.port)
    await wait_for(device, IDLE, 3)


async def test_refused_update_and_cancel(bench: Bench) -> None:
    device = await bench.device(faults=FaultConfig(refuse_update=8))
    await push(bench.ctx, device.port, bench.model.package, szx=6)
    await execute(bench.ctx, device.port)
    await wait_for(device, IDLE, 8)
    other = await bench.device()
    await push(bench.ctx, other.port, bench.model.package, szx=6)
    assert (await execute(bench.ctx, other.port, "/5/0/10")).code == Code.CHANGED
    await wait_for(other, IDLE, 10)


# ---- state machine rules -------------------------------------------------------------------------


async def test_execute_outside_downloaded_is_405(bench: Bench) -> None:
    device = await bench.device()
    assert (await execute(bench.ctx, device.port)).code == Code.METHOD_NOT_ALLOWED


async def test_empty_uri_or_nul_package_resets_to_idle(bench: Bench) -> None:
    device = await bench.device()
    await push(bench.ctx, device.port, bench.model.package, szx=6)
    await wait_for(device, DOWNLOADED)
    assert (await write_uri(bench.ctx, device.port, "")).code == Code.CHANGED
    await wait_for(device, IDLE, 0)
    await push(bench.ctx, device.port, bench.model.package, szx=6)
    await wait_for(device, DOWNLOADED)
    log = await push(bench.ctx, device.port, b"\0", szx=6)
    assert log.codes == ["2.04"]
    await wait_for(device, IDLE, 0)
    assert device.firmware is not None and device.firmware.package == bytearray()


async def test_bad_uris_set_results_7_and_9(bench: Bench) -> None:
    device = await bench.device()
    assert (await write_uri(bench.ctx, device.port, "no uri at all")).code == Code.CHANGED
    await wait_for(device, IDLE, 7)
    await write_uri(bench.ctx, device.port, "coaps://127.0.0.1:5684/fw/x")  # device lists CoAP only
    await wait_for(device, IDLE, 9)
    _, missing = bench.serve(b"x", "there")
    await write_uri(bench.ctx, device.port, missing.replace("there", "not-there"))
    await wait_for(device, IDLE, 7)  # 4.04 from the server


# ---- pull ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_pull_then_install(bench: Bench, version: str) -> None:
    device = await bench.device(lwm2m_version=version, block_size=1024)
    resource, uri = bench.serve(bench.model.package)
    assert (await write_uri(bench.ctx, device.port, uri + "?ignored=1")).code == Code.CHANGED
    await wait_for(device, DOWNLOADED)
    blocks = len(bench.model.package) // 1024 + 1
    assert resource.requests == [(n, 6) for n in range(blocks)]
    assert await read_text(bench.ctx, device.port, "/5/0/1") == uri + "?ignored=1"
    await execute(bench.ctx, device.port)
    await wait_for(device, IDLE, 1)
    await assert_model_installed(bench, device)


async def test_pull_resumes_after_reboot_mid_download(bench: Bench) -> None:
    device = await bench.device(block_size=512, faults=FaultConfig(reboot_after_blocks=20, reboot_down_s=0.1))
    resource, uri = bench.serve(bench.model.package)
    await write_uri(bench.ctx, device.port, uri)
    await wait_for(device, DOWNLOADED, timeout=30)
    numbers = [n for n, _ in resource.requests]
    assert device.reboots == 1
    assert numbers.count(0) == 1, "the download resumed, it did not start over"
    assert numbers == sorted(numbers) and numbers[-1] == len(bench.model.package) // 512
    assert len(bench.rd.rd.of("0.02", path_len=1)) == 2  # registered again after the reboot
    assert device.firmware is not None and bytes(device.firmware.package) == bench.model.package
    await execute(bench.ctx, device.port)
    await wait_for(device, IDLE, 1)


async def test_pull_too_big_for_flash_is_result_2(bench: Bench) -> None:
    device = await bench.device(profile=HardwareProfile(flash_free=16 * 1024))
    resource, uri = bench.serve(bench.model.package)
    await write_uri(bench.ctx, device.port, uri)
    await wait_for(device, IDLE, 2)
    assert len(resource.requests) == 1  # Size2 told it at once


async def test_raw_firmware_image_bumps_version_and_reregisters(bench: Bench) -> None:
    device = await bench.device(accept_raw_firmware=True, block_size=16, firmware_version="2.3.9")
    image = bytes(range(256)) * 8
    _, uri = bench.serve(image, "fw-image")
    await write_uri(bench.ctx, device.port, uri)
    await wait_for(device, DOWNLOADED)
    await execute(bench.ctx, device.port)
    await wait_for(device, IDLE, 1)
    assert await read_text(bench.ctx, device.port, "/3/0/3") == "2.3.10"
    for _ in range(100):
        if len(bench.rd.rd.of("0.02", path_len=1)) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(bench.rd.rd.of("0.02", path_len=1)) == 2
    plain = await bench.device()  # a device that takes no raw images
    _, uri = bench.serve(image, "fw-image2")
    await write_uri(bench.ctx, plain.port, uri)
    await wait_for(plain, DOWNLOADED)
    await execute(bench.ctx, plain.port)
    await wait_for(plain, IDLE, 6)


async def test_self_test_execute_runs_the_model_again(bench: Bench) -> None:
    device = await bench.device()
    await push(bench.ctx, device.port, bench.model.package, szx=6)
    await execute(bench.ctx, device.port)
    await wait_for(device, IDLE, 1)
    assert (await execute(bench.ctx, device.port, "/32002/0/13")).code == Code.CHANGED
    assert await read_text(bench.ctx, device.port, "/32002/0/9") == "2"
    assert device.objects is not None
    assert device.objects.get(LwM2MPath(32002, 0, 12)) == "ok"


async def test_reboot_during_push_is_result_4(bench: Bench) -> None:
    device = await bench.device(faults=FaultConfig(reboot_after_blocks=5, reboot_down_s=0.1))
    with pytest.raises(TimeoutError):
        await push(bench.ctx, device.port, bench.model.package, szx=6, timeout=1.0)
    await wait_for(device, IDLE, 4)  # the RAM buffer is gone: connection lost, the server pushes again
    assert device.reboots == 1


async def test_pull_never_splices_two_packages(bench: Bench) -> None:
    """The package behind the URI changes during a reboot: a new ETag restarts the download from 0."""
    device = await bench.device(block_size=1024, faults=FaultConfig(reboot_after_blocks=10, reboot_down_s=0.5))
    resource, uri = bench.serve(bench.model.package)
    await write_uri(bench.ctx, device.port, uri)
    for _ in range(200):
        if device.reboots:
            break
        await asyncio.sleep(0.01)
    other = bytes(reversed(bench.model.package))
    resource.data = other
    resource.etag = b"new-etag"
    await wait_for(device, DOWNLOADED, timeout=30)
    assert device.firmware is not None and bytes(device.firmware.package) == other
    numbers = [n for n, _ in resource.requests]
    assert numbers.count(0) == 2  # started over once after seeing the new ETag


async def test_corrupt_only_the_first_download(bench: Bench) -> None:
    device = await bench.device(faults=FaultConfig(corrupt_downloads=1))
    for expected in (5, 1):  # the retry gets a clean copy
        await push(bench.ctx, device.port, bench.model.package, szx=6)
        await execute(bench.ctx, device.port)
        await wait_for(device, IDLE, expected)
