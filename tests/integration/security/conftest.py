"""A real LwM2MServer with the coaps listener on (ephemeral ports, SQLite in tmp_path) and DTLS sim devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.config import Settings
from lwm2m_server.server import LwM2MServer
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig


def secure_settings(tmp_path: Path, *, plain: bool = True, **coap: Any) -> Settings:
    return Settings.model_validate(
        {
            "server": {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": str(tmp_path / "data"),
                       "request_timeout_s": 5.0, "registration_grace_s": 0.0},
            "coap": {"plain": plain, "secure": True, "coaps_port": 0, **coap},
            "store": {"batch_window_ms": 2.0},
        }
    )  # fmt: skip


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LwM2MServer]:
    srv = LwM2MServer(secure_settings(tmp_path))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def coaps_uri(server: LwM2MServer) -> str:
    return f"coaps://127.0.0.1:{server.coaps_port}"


def psk_device(endpoint: str, identity: str, key: bytes, **config: Any) -> SimulatedDevice:
    return SimulatedDevice(DeviceConfig(endpoint=endpoint, psk_identity=identity, psk_key=key, **config))
