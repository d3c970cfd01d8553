"""One Object 5 definition: the client-side state machine the simulator obeys, and the codes, failure classes,
names and /5/0/8 scheme table that the OTA job, the inventory and the simulator all take from the core."""

from __future__ import annotations

import pytest

from lwm2m_server import inventory
from lwm2m_server.ota import job_state, method
from lwm2m_server.protocol.fwupdate import (
    DEVICE_TRANSITIONS,
    PROTOCOL_SCHEMES,
    FirmwareState,
    FirmwareStateError,
    UpdateResult,
    device_transition,
    update_result,
)
from simulator import firmware

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


def test_job_failure_classes_come_from_the_core() -> None:
    for code in UpdateResult:
        core = code.failure_class
        assert job_state.failure_class(int(code)) == (None if core == "deferred" else core)
    assert job_state.failure_class(None) is None and job_state.failure_class(99) is None
    assert update_result(99) is None and update_result(True) is None
    assert job_state.RESULT_NAMES[5] == UpdateResult.INTEGRITY_FAILURE.description == "integrity check failure"
    assert job_state.describe(job_state.Cause.UPDATE_RESULT, 8) == "firmware update failed (Update Result 8)"


def test_one_scheme_table_and_one_set_of_codes() -> None:
    assert method.PROTOCOL_SCHEMES is PROTOCOL_SCHEMES
    assert inventory.PROTOCOLS is PROTOCOL_SCHEMES
    assert firmware.SCHEMES is PROTOCOL_SCHEMES
    assert tuple(S) == (firmware.IDLE, firmware.DOWNLOADING, firmware.DOWNLOADED, firmware.UPDATING)
    assert firmware.R_INTEGRITY is UpdateResult.INTEGRITY_FAILURE and firmware.R_CANCELLED is UpdateResult.CANCELLED
