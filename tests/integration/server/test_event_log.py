"""``[store] event_log_types`` / ``event_log_skip`` over real UDP: a simulated device registers and sends
notifications; the SQLite file's ``events`` table holds exactly the configured types, while the bus (SSE, MQTT)
still sees every notification."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.config import load_settings
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.server import LwM2MServer
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig
from tests.integration.server.conftest import until, wait_event

NOTIFICATIONS = 5


def _logged_types(path: Path) -> Counter[str]:
    with sqlite3.connect(path) as conn:
        return Counter(str(t) for (t,) in conn.execute("SELECT type FROM events"))


async def _run(tmp_path: Path, store: dict[str, Any]) -> tuple[Counter[str], int]:
    """Register one device, make it notify ``NOTIFICATIONS`` times; (event log types, notifications on the bus)."""
    server_values = {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": tmp_path / "data",
                     "registration_grace_s": 0.0, "request_timeout_s": 5.0}  # fmt: skip
    settings = load_settings(None, environ={}, overrides={"server": server_values,
                                                          "store": {"batch_window_ms": 2.0, **store}})
    server = LwM2MServer(settings)
    on_bus: Counter[str] = Counter()
    server.events.add_sink(lambda e: on_bus.update((e.type,)))
    await server.start()
    try:
        inventory = server.events.subscribe(types={"inventory"})
        notes = server.events.subscribe(types={"notification"})
        device = SimulatedDevice(DeviceConfig(endpoint="log-1", lwm2m_version="1.1"))
        await device.start(f"coap://127.0.0.1:{server.coap_port}")
        try:
            await wait_event(inventory, lambda e: e.endpoint == "log-1")
            await until(lambda: any(str(o.path) == "/5/0/3" for o in server.client.observations("log-1")))
            assert device.objects is not None
            for state in range(1, NOTIFICATIONS + 1):
                device.objects.set(LwM2MPath(5, 0, 3), state % 4)
                await wait_event(notes, lambda e, s=state % 4: e.data["values"] == {"/5/0/3": s})
        finally:
            await device.stop()
        await server.store.flush()
        return _logged_types(settings.store_path), on_bus["notification"]
    finally:
        await server.stop()


async def test_default_logs_every_event_type(tmp_path: Path) -> None:
    logged, seen = await _run(tmp_path, {})
    assert logged["notification"] == seen >= NOTIFICATIONS
    assert logged["registered"] == 1 and logged["inventory"] == 1 and logged["deregistered"] == 1


async def test_skipped_notifications_reach_the_bus_but_not_the_log(tmp_path: Path) -> None:
    logged, seen = await _run(tmp_path, {"event_log_skip": ["notification"]})
    assert seen >= NOTIFICATIONS  # the bus (SSE, MQTT) still carries every notification
    assert logged["notification"] == 0
    assert logged["registered"] == 1 and logged["inventory"] == 1 and logged["deregistered"] == 1


@pytest.mark.parametrize("types", [["registered", "deregistered"], ["registered", "deregistered", "notification"]])
async def test_only_the_named_types_are_logged(tmp_path: Path, types: list[str]) -> None:
    logged, _ = await _run(tmp_path, {"event_log_types": types, "event_log_skip": ["notification"]})
    assert dict(logged) == {"registered": 1, "deregistered": 1}  # the skip list wins over the types list


def test_settings_from_toml_env_and_cli_flags(tmp_path: Path) -> None:
    from lwm2m_server.cli.serve import _type_list

    cfg = tmp_path / "c.toml"
    cfg.write_text('[store]\nevent_log_skip = ["notification", "ota.progress"]\n')
    st = load_settings(cfg, environ={}).store
    assert (st.event_logged("notification"), st.event_logged("ota.progress"), st.event_logged("registered")) == (
        False, False, True)
    env = load_settings(None, environ={"TINYMLAAS_STORE__EVENT_LOG_TYPES": '["registered"]'}).store
    assert env.event_logged("registered") and not env.event_logged("updated")
    flags = load_settings(cfg, environ={}, overrides={"store": {"event_log_skip": _type_list(""),
                                                                "event_log_types": _type_list(" updated, send")}})
    assert flags.store.event_log_skip == () and flags.store.event_log_types == ("updated", "send")
    assert _type_list(None) is None
