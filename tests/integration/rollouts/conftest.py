"""A full :class:`Application` (server + OTA + rollouts + HTTP) on ephemeral ports, real simulated devices on
loopback, real compiles. The zoo model is trained (1 epoch) and compiled once per test session: every test's
CompileService shares one session cache directory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from compilers.planner import CompileService
from lwm2m_server.application import Application
from lwm2m_server.config import Settings, load_settings
from lwm2m_server.ota import builds
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig, FaultConfig, HardwareProfile
from tests.support.auth import bearer, exported
from tests.support.fleet import KIB, M4F, wait_for
from tests.support.shared import KWS

SHA = LwM2MPath(32002, 0, 2)
FW_STATE = LwM2MPath(5, 0, 3)

M7 = HardwareProfile(
    name="m7-512k",
    ram_total=512 * KIB,
    ram_free_ml=320 * KIB,
    flash_total=2048 * KIB,
    flash_free=1024 * KIB,
    cpu="cortex-m7",
    clock_mhz=216,
    fpu=True,
    accelerator="none",
)
TINY = HardwareProfile(
    name="m0-tiny",
    ram_total=8 * KIB,
    ram_free_ml=2 * KIB,
    flash_total=32 * KIB,
    flash_free=8 * KIB,
    cpu="cortex-m0plus",
    clock_mhz=48,
    fpu=False,
    max_package=8 * KIB,
)


def app_settings(data_dir: Path, **extra: Any) -> Settings:
    overrides: dict[str, Any] = {
        "server": {"coap_host": "127.0.0.1", "coap_port": 0, "http_port": 0, "data_dir": str(data_dir),
                   "request_timeout_s": 5.0, "queue_mode_window_s": 1.0},
        "ota": {"block_size": 1024, "poll_interval_s": 0.5, "timeout_s": 20.0, "retry_backoff_s": 0.2,
                "max_retries": 1},
        "store": {"batch_window_ms": 2.0},
    }  # fmt: skip
    for section, values in extra.items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(None, environ={}, overrides=overrides)


class InstallCounter:
    """Counts a simulated device's installs: every pass through Object 5 State 3 (Updating)."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self.installs = 0
        assert device.objects is not None
        device.objects.add_listener(self._changed)

    def _changed(self, path: LwM2MPath) -> None:
        if path == FW_STATE and self.device.objects is not None and self.device.objects.get(FW_STATE) == 3:
            self.installs += 1

    @property
    def sha(self) -> str:
        assert self.device.objects is not None
        return str(self.device.objects.get(SHA) or "")


@dataclass
class Fleet:
    """Simulated devices of one test, with their install counters."""

    public_key: bytes
    devices: dict[str, SimulatedDevice] = field(default_factory=dict)
    counters: dict[str, InstallCounter] = field(default_factory=dict)

    async def add(self, server_uri: str, endpoint: str, profile: HardwareProfile, **config: Any) -> SimulatedDevice:
        cfg = DeviceConfig(endpoint=endpoint, profile=profile, server_public_key=self.public_key, **config)
        device = SimulatedDevice(cfg)
        await asyncio.wait_for(device.start(server_uri), 10.0)
        self.devices[endpoint] = device
        self.counters[endpoint] = InstallCounter(device)
        return device

    async def stop(self) -> None:
        for device in self.devices.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(device.stop(deregister=False), 5.0)


def repair(device: SimulatedDevice) -> None:
    """The operator fixed the device: no more injected faults from now on."""
    from dataclasses import replace

    device.config = replace(device.config, faults=FaultConfig())
    assert device.firmware is not None
    device.firmware.config = device.config


@dataclass
class Stack:
    app: Application
    http: httpx.AsyncClient
    fleet: Fleet

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app.http_port}"

    @property
    def coap_uri(self) -> str:
        return f"coap://127.0.0.1:{self.app.coap_port}"

    async def add_device(self, endpoint: str, profile: HardwareProfile = M4F, **config: Any) -> SimulatedDevice:
        device = await self.fleet.add(self.coap_uri, endpoint, profile, **config)

        async def has_profile() -> bool:
            response = await self.http.get(f"/api/devices/{endpoint}")
            return response.status_code == 200 and response.json()["profile"] is not None

        await wait_for(has_profile, 10.0, f"profile of {endpoint}")
        return device

    async def upload_kws(self, name: str = "kws") -> dict[str, Any]:
        response = await self.http.post("/api/models", files={"file": ("kws.tflite", KWS.read_bytes())},
                                        data={"name": name})  # fmt: skip
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def rollout(self, rollout_id: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(f"/api/rollouts/{rollout_id}", params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_state(self, rollout_id: str, states: set[str], timeout: float = 30.0) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal last
            last = await self.rollout(rollout_id, limit=1000)
            return last["state"] in states

        try:
            await wait_for(reached, timeout, f"rollout {rollout_id} in {states}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last: state={last.get('state')} counts={last.get('counts')} "
                                 f"devices={last.get('devices')}") from None  # fmt: skip
        return last


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rollout-compile-cache")


def compile_service(cache: Path) -> CompileService:
    return CompileService(cache, workers=1, zoo_epochs=1)


@contextlib.asynccontextmanager
async def running_stack(data_dir: Path, cache: Path, **settings: Any) -> AsyncIterator[Stack]:
    app = Application(app_settings(data_dir, **settings), compile_service=compile_service(cache))
    await app.start()
    assert app.initial_admin_token is not None  # a fresh data dir: the first start made the admin token
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", timeout=120.0,
                             headers=bearer(app.initial_admin_token))
    fleet = Fleet(builds.server_public_key(data_dir))
    try:
        with exported(app.initial_admin_token):
            yield Stack(app, http, fleet)
    finally:
        await http.aclose()
        await fleet.stop()
        await app.stop()


@pytest_asyncio.fixture
async def stack(tmp_path: Path, compile_cache: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path / "data", compile_cache) as s:
        yield s
