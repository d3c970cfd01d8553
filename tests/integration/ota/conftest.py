"""Server + OtaService + real simulated devices over loopback UDP, with a real SQLite store in tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.config import Settings
from lwm2m_server.ota.service import OtaService
from lwm2m_server.server import LwM2MServer
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig


def make_settings(tmp_path: Path, **ota: Any) -> Settings:
    base = {"block_size": 1024, "poll_interval_s": 1.0, "timeout_s": 15.0, "retry_backoff_s": 0.2, "max_retries": 2}
    base.update(ota)
    return Settings.model_validate(
        {
            "server": {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": str(tmp_path / "data"),
                       "request_timeout_s": 5.0, "queue_mode_window_s": 1.0},
            "ota": base,
        }
    )  # fmt: skip


@dataclass
class Harness:
    tmp_path: Path
    server: LwM2MServer
    ota: OtaService
    devices: list[SimulatedDevice] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"coap://127.0.0.1:{self.server.coap_port}"

    async def device(self, endpoint: str, **config: Any) -> SimulatedDevice:
        dev = SimulatedDevice(DeviceConfig(endpoint=endpoint, **config))
        self.devices.append(dev)
        await dev.start(self.uri)
        return dev


async def start_harness(tmp_path: Path, **ota: Any) -> tuple[LwM2MServer, OtaService]:
    server = LwM2MServer(make_settings(tmp_path, **ota))
    service = OtaService(server)
    await server.start()
    await service.start()
    return server, service


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    server, service = await start_harness(tmp_path)
    h = Harness(tmp_path, server, service)
    yield h
    for dev in h.devices:
        await dev.stop(deregister=False)
    await service.stop()
    await server.stop()


HarnessFactory = Callable[..., Any]
