"""A running LwM2MServer + HTTP API on ephemeral ports, with simulated devices over real UDP loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from lwm2m_server.api import ApiRunner, create_app
from lwm2m_server.config import Settings, load_settings
from lwm2m_server.server import LwM2MServer
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig, HardwareProfile
from tests.support.auth import Auth, authorized
from tests.support.fleet import KIB, M4F, wait_for

M0 = HardwareProfile(
    name="m0plus-64k",
    ram_total=64 * KIB,
    ram_free_ml=24 * KIB,
    flash_total=256 * KIB,
    flash_free=128 * KIB,
    cpu="cortex-m0plus",
    clock_mhz=48,
    fpu=False,
    accelerator="none",
)
U55 = HardwareProfile(
    name="u55-board",
    ram_total=512 * KIB,
    ram_free_ml=384 * KIB,
    flash_total=2048 * KIB,
    flash_free=1024 * KIB,
    cpu="cortex-m55",
    clock_mhz=160,
    fpu=True,
    accelerator="ethos-u55-128",
    accelerator_sram=256 * KIB,
)


def api_settings(data_dir: Path, **server: Any) -> Settings:
    values: dict[str, Any] = {
        "coap_host": "127.0.0.1",
        "coap_port": 0,
        "http_port": 0,
        "data_dir": str(data_dir),
        "request_timeout_s": 3.0,
    }
    values.update(server)
    return load_settings(environ={}, overrides={"server": values})


@dataclass
class Stack:
    server: LwM2MServer
    runner: ApiRunner
    http: httpx.AsyncClient  # carries an admin token
    auth: Auth
    devices: dict[str, SimulatedDevice] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.runner.url

    @property
    def coap_uri(self) -> str:
        return f"coap://127.0.0.1:{self.server.coap_port}"

    async def add_device(
        self,
        endpoint: str,
        *,
        version: str = "1.1",
        profile: HardwareProfile = M4F,
        binding: str = "U",
        wait_profile: bool = True,
        **config: Any,
    ) -> SimulatedDevice:
        cfg = DeviceConfig(
            endpoint=endpoint,
            profile=profile,
            lwm2m_version=version,  # type: ignore[arg-type]
            binding=binding,
            **config,
        )  # type: ignore[arg-type]
        device = SimulatedDevice(cfg)
        await asyncio.wait_for(device.start(self.coap_uri), 10.0)
        self.devices[endpoint] = device
        if wait_profile:
            await wait_for(lambda: self._has_profile(endpoint), 10.0, f"profile of {endpoint}")
        return device

    async def _has_profile(self, endpoint: str) -> bool:
        response = await self.http.get(f"/api/devices/{endpoint}")
        return response.status_code == 200 and response.json()["profile"] is not None


@contextlib.asynccontextmanager
async def running_stack(data_dir: Path, **server: Any) -> AsyncIterator[Stack]:
    lwm2m = LwM2MServer(api_settings(data_dir, **server))
    await lwm2m.start()
    async with authorized(lwm2m.store) as auth:
        runner = ApiRunner(create_app(lwm2m, tokens=auth.tokens, sse_keepalive_s=0.5), "127.0.0.1", 0)
        await runner.start()
        http = httpx.AsyncClient(base_url=runner.url, timeout=15.0, headers=auth.headers)
        stack = Stack(lwm2m, runner, http, auth)
        try:
            yield stack
        finally:
            await http.aclose()
            for device in stack.devices.values():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(device.stop(), 6.0)
            await runner.stop()
            await lwm2m.stop()


@pytest_asyncio.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path) as s:
        yield s
