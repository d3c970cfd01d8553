"""The factory content of a simulated device: objects 0, 1, 3, 4, 5, 32001 and 32002 from its config."""

from __future__ import annotations

import time

from lwm2m_server.protocol.fwupdate import (
    FW_DELIVERY,
    FW_PACKAGE_URI,
    FW_PKG_NAME,
    FW_PKG_VERSION,
    FW_PROTOCOLS,
    FW_RESULT,
    FW_STATE,
    DeliveryMethod,
    FirmwareState,
    UpdateResult,
)
from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.objects import ObjectStore, ResourceValue
from simulator.profiles import DeviceConfig

SHORT_SERVER_ID = 1
NETWORK_BEARER = {"U": 41, "UQ": 7}
"""/4/0/0: 41 Ethernet for always-on devices, 7 NB-IoT for queue-mode ones."""

NO_MODEL_HEALTH = "no-model"


def supported_bindings(config: DeviceConfig) -> str:
    """/3/0/16: 1.0 writes the queue flag into the binding; 1.1 lists Q as a mode."""
    return "UQ" if config.queue_mode else "U"


def build_store(config: DeviceConfig, server_uri: str, model: ObjectRegistry | None = None) -> ObjectStore:
    store = ObjectStore(model or ObjectRegistry.default())
    hw = config.profile
    store.add_instance(
        0,
        0,
        {0: server_uri, 1: False, 2: 3, 3: b"", 4: b"", 5: b"", 10: SHORT_SERVER_ID},
    )
    store.add_instance(
        1,
        0,
        {0: SHORT_SERVER_ID, 1: config.lifetime, 6: True, 7: "UQ" if config.queue_mode else "U"},
    )
    store.add_instance(
        3,
        0,
        {
            0: config.manufacturer,
            1: config.model_number or hw.name,
            2: config.serial or f"SN-{config.endpoint}",
            3: config.firmware_version,
            9: 100,
            10: hw.flash_free // 1024,
            11: {0: 0},
            13: int(time.time()),
            16: supported_bindings(config),
            17: "TinyML board",
            18: hw.name,
            21: hw.flash_total // 1024,
        },
    )
    bearer = NETWORK_BEARER["UQ" if config.queue_mode else "U"]
    store.add_instance(4, 0, {0: bearer, 1: {0: bearer}, 2: -70, 4: {0: "127.0.0.1"}})
    store.add_instance(
        5,
        0,
        {
            _rid(FW_PACKAGE_URI): "",
            _rid(FW_STATE): int(FirmwareState.IDLE),
            _rid(FW_RESULT): int(UpdateResult.INITIAL),
            _rid(FW_PKG_NAME): "",
            _rid(FW_PKG_VERSION): "",
            _rid(FW_PROTOCOLS): dict(enumerate(config.protocols)),
            _rid(FW_DELIVERY): int(DeliveryMethod.named(config.delivery)),
        },
    )
    hardware: dict[int, ResourceValue] = {
        0: hw.ram_total,
        1: hw.ram_free_ml,
        2: hw.flash_total,
        3: hw.flash_free,
        4: hw.cpu,
        5: hw.clock_mhz,
        6: hw.fpu,
        7: hw.accelerator,
        8: hw.accelerator_sram,
        9: hw.runtime,
        11: hw.max_package,
    }
    if hw.ops:
        hardware[10] = dict(enumerate(hw.ops))
    store.add_instance(32001, 0, hardware)
    store.add_instance(32002, 0, empty_model_values())
    return store


def empty_model_values() -> dict[int, ResourceValue]:
    """/32002/0 before any model is installed (the instance exists so the server can observe it)."""
    return {0: "", 1: "", 2: "", 3: "", 4: 0, 9: 0, 10: 0, 11: "", 12: NO_MODEL_HEALTH}


def _rid(path: LwM2MPath) -> int:
    assert path.resource_id is not None
    return path.resource_id
