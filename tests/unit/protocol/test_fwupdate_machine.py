"""One Object 5 definition: the client-side state machine the simulator obeys, and the codes, failure classes,
names, /5/0/9 delivery numbers and /5/0/8 scheme table that the OTA job, the inventory and the simulator all take
from the core (and no module outside the core redefines)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lwm2m_server import inventory
from lwm2m_server.ota import job_state, method
from lwm2m_server.protocol.fwupdate import (
    DEVICE_TRANSITIONS,
    FW_DELIVERY,
    FW_RESULT,
    FW_STATE,
    DeliveryMethod,
    FirmwareState,
    FirmwareStateError,
    UpdateResult,
    delivery_method,
    device_transition,
    retry_decision,
    update_result,
)
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.initial import build_store
from simulator.profiles import DeviceConfig

S = FirmwareState


@pytest.mark.parametrize("old", list(S))
@pytest.mark.parametrize("new", list(S))
def test_device_transitions(old: S, new: S) -> None:
    allowed = not (new is S.UPDATING and old not in (S.DOWNLOADED, S.UPDATING)) and not (
        old is S.UPDATING and new is S.DOWNLOADING
    )
    assert (new in DEVICE_TRANSITIONS[old]) is allowed
    if allowed:
        assert device_transition(int(old), int(new)) is new
    else:
        with pytest.raises(FirmwareStateError, match="is not allowed"):
            device_transition(int(old), int(new))


def test_unknown_state_is_an_error() -> None:
    with pytest.raises(ValueError):
        device_transition(0, 7)


def test_job_causes_and_names_come_from_the_core() -> None:
    for code in UpdateResult:
        decision = retry_decision(int(code), 1, 3, 1.0)
        assert decision.failure == code.failure_class
    assert retry_decision(None, 1, 3, 1.0).failure is None and retry_decision(99, 1, 3, 1.0).failure is None
    assert update_result(99) is None and update_result(True) is None
    assert job_state.failure_cause(UpdateResult.OUT_OF_RAM.failure_class) is job_state.Cause.NOT_FITTING
    assert job_state.describe(job_state.Cause.UPDATE_RESULT, 8) == "firmware update failed (Update Result 8)"
    assert job_state.describe(job_state.Cause.UPDATE_RESULT, 5) == "integrity check failure (Update Result 5)"


def test_delivery_method_and_schemes_are_one_table() -> None:
    assert [(int(d), d.human) for d in DeliveryMethod] == [(0, "pull"), (1, "push"), (2, "both")]
    assert DeliveryMethod.named("push") is DeliveryMethod.PUSH
    with pytest.raises(ValueError, match="delivery must be push, pull or both"):
        DeliveryMethod.named("carrier-pigeon")
    assert delivery_method(7) is None and delivery_method(None) is None and delivery_method(True) is None
    assert method.device_methods(None) == method.device_methods(2) == frozenset({"push", "pull"})
    assert method.device_methods(0) == frozenset({"pull"}) and method.device_methods(1) == frozenset({"push"})
    firmware_content = {LwM2MPath(5, 0, 9): 1, LwM2MPath(5, 0, 8, 0): 0, LwM2MPath(5, 0, 8, 1): 1}
    profile = inventory.DeviceProfile.from_content({}, None, firmware_content)
    assert profile.delivery_method == "push" and profile.protocols == ["coap", "coaps"]
    for delivery in ("pull", "push", "both"):
        store = build_store(DeviceConfig(endpoint="d", delivery=delivery), "coap://127.0.0.1:5683")  # type: ignore[arg-type]
        assert store.get(FW_DELIVERY) == DeliveryMethod.named(delivery)
        assert store.get(FW_STATE) == S.IDLE and store.get(FW_RESULT) == UpdateResult.INITIAL
    with pytest.raises(ValueError, match="delivery must be push, pull or both"):
        DeviceConfig(endpoint="d", delivery="carrier-pigeon")  # type: ignore[arg-type]


ROOT = Path(__file__).resolve().parents[3]
_COPIES = [
    re.compile(r"\{\s*0:\s*\"coap\""),  # a /5/0/8 -> scheme map
    re.compile(r"\"pull\":\s*0|0:\s*\"pull\""),  # a /5/0/9 map
    re.compile(r"\b(IDLE|DOWNLOADING|DOWNLOADED|UPDATING)\s*(,\s*\w+\s*)*=\s*(\d|FirmwareState\b)"),  # re-named states
    re.compile(r"\bR_[A-Z_]+\s*=|\bSCHEMES\s*=\s*PROTOCOL_SCHEMES"),  # short names for results / the table
]


def test_no_module_outside_the_core_redefines_object_5_numbers() -> None:
    """The scheme map, the delivery numbers and the State/Result codes live in protocol/fwupdate.py only."""
    core = ROOT / "lwm2m_server" / "protocol" / "fwupdate.py"
    offenders = []
    for folder in ("lwm2m_server", "simulator"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == core:
                continue
            text = path.read_text()
            offenders += [f"{path.relative_to(ROOT)}: {p.pattern}" for p in _COPIES if p.search(text)]
    assert offenders == []
    assert _COPIES[0].search(core.read_text()) and _COPIES[1].search('{"pull": 0, "push": 1}')  # the checks bite
