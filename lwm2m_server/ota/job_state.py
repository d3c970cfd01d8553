"""The pure part of an OTA update job: phases, legal transitions, what an Object 5 reading means, retries.

No I/O here: :mod:`lwm2m_server.ota.job` drives the device and feeds what it sees into these functions, so every
decision (execute now? confirm? retry in how long? report "not fitting"?) is unit-testable without a device.
Object 5 itself (State and Update Result codes, their failure classes and names) is the protocol core's
:mod:`lwm2m_server.protocol.fwupdate`; nothing here re-derives it from raw integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from lwm2m_server.protocol.fwupdate import FirmwareState, UpdateResult, update_result


class JobPhase(StrEnum):
    QUEUED = "queued"  # created (or resumed), not started
    PREPARING = "preparing"  # reading Object 5, resetting it if it is not Idle
    DELIVERING = "delivering"  # push: Block1 transfer to /5/0/0; pull: writing /5/0/1
    DOWNLOADING = "downloading"  # waiting for State 2 (Downloaded)
    UPDATING = "updating"  # Execute /5/0/2 sent, waiting for Idle with a result
    CONFIRMING = "confirming"  # reading /32002/0 (model) or waiting for result 1 (plain firmware)
    RETRY_WAIT = "retry_wait"  # back-off before the next attempt
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.CANCELLED})
ACTIVE = frozenset(JobPhase) - TERMINAL

_P = JobPhase
TRANSITIONS: dict[JobPhase, frozenset[JobPhase]] = {
    _P.QUEUED: frozenset({_P.PREPARING, _P.DOWNLOADING, _P.UPDATING, _P.CONFIRMING}),  # resume may re-enter anywhere
    _P.PREPARING: frozenset({_P.DELIVERING}),
    _P.DELIVERING: frozenset({_P.DOWNLOADING, _P.UPDATING}),
    _P.DOWNLOADING: frozenset({_P.UPDATING, _P.CONFIRMING}),
    _P.UPDATING: frozenset({_P.CONFIRMING}),
    _P.CONFIRMING: frozenset({_P.SUCCEEDED}),
    _P.RETRY_WAIT: frozenset({_P.PREPARING}),
    _P.SUCCEEDED: frozenset(),
    _P.FAILED: frozenset(),
    _P.CANCELLED: frozenset(),
}
for _phase in ACTIVE:  # any active phase may fail, be cancelled, back off or go back to QUEUED (restart)
    TRANSITIONS[_phase] = TRANSITIONS[_phase] | {_P.FAILED, _P.CANCELLED, _P.RETRY_WAIT, _P.QUEUED}


class IllegalTransition(RuntimeError):
    pass


class Cause(StrEnum):
    """Why a job failed; ``not_fitting`` goes back to the planner (re-plan for less memory)."""

    NOT_FITTING = "not_fitting"  # Update Result 2 or 3 (or an arena failure)
    UPDATE_RESULT = "update_result"  # Update Result 6-9: final
    RETRIES_EXHAUSTED = "retries_exhausted"  # Update Result 4/5 more than max_retries times
    TIMEOUT = "timeout"
    NOT_CONFIRMED = "not_confirmed"  # /32002/0 sha256 or health wrong after "success"
    DEVICE_ERROR = "device_error"  # a CoAP error the job cannot work around (e.g. 4.04 on /5/0)
    NO_METHOD = "no_method"  # neither push nor pull works for this device
    CANCELLED = "cancelled"


RESULT_NAMES: dict[int, str] = {int(r): r.description for r in UpdateResult}

FailureClass = Literal["retryable", "fit", "final", "cancelled"]


def failure_class(result: int | None) -> FailureClass | None:
    """DESIGN §4: retry 4 and 5; 2 and 3 mean 'does not fit'; 6-9 are final; 10 is a cancel. A deferral (11)
    is not a failure for a job: it keeps waiting in Downloaded."""
    code = update_result(result)
    cls = None if code is None else code.failure_class
    return None if cls == "deferred" else cls


@dataclass(frozen=True, slots=True)
class Step:
    """What to do after an Object 5 reading: wait, execute, confirm, or fail with ``result``."""

    action: Literal["wait", "execute", "confirm", "fail"]
    result: int | None = None


def interpret(phase: JobPhase, state: int | None, result: int | None) -> Step:
    """Map an Object 5 (State, Update Result) reading to the next step for a job in ``phase``.

    Devices differ: one never shows State 1 on push, a failed update may land in Idle or back in Downloaded,
    so the result is what counts once it is a failure code.
    """
    cls = failure_class(result)
    if cls is not None and cls != "cancelled":
        return Step("fail", result)
    if phase in (JobPhase.DELIVERING, JobPhase.DOWNLOADING):
        if state == FirmwareState.DOWNLOADED:
            return Step("execute")
        return Step("wait")  # still downloading, or Updating: the device started updating on its own
    if phase in (JobPhase.UPDATING, JobPhase.CONFIRMING):
        if result == UpdateResult.SUCCESS and state in (FirmwareState.IDLE, None):
            return Step("confirm")
        return Step("wait")
    return Step("wait")


@dataclass(frozen=True, slots=True)
class FailureDecision:
    retry: bool
    delay_s: float
    cause: Cause | None  # set when not retrying


def on_failure(result: int | None, attempt: int, max_retries: int, backoff_s: float) -> FailureDecision:
    """Retry results 4/5 with exponential back-off (``backoff * 2**(attempt-1)``) while attempts remain."""
    cls = failure_class(result)
    if cls == "retryable":
        if attempt <= max_retries:
            return FailureDecision(True, backoff_s * (2 ** (attempt - 1)), None)
        return FailureDecision(False, 0.0, Cause.RETRIES_EXHAUSTED)
    if cls == "fit":
        return FailureDecision(False, 0.0, Cause.NOT_FITTING)
    if cls == "cancelled":
        return FailureDecision(False, 0.0, Cause.CANCELLED)
    return FailureDecision(False, 0.0, Cause.UPDATE_RESULT)


def describe(cause: Cause | None, result: int | None) -> str:
    """One line for the operator: the Update Result name, 'timeout' or 'not fitting'."""
    name = RESULT_NAMES.get(result, f"result {result}") if result is not None else None
    if cause is None:
        return "ok"
    if cause is Cause.NOT_FITTING:
        return f"not fitting ({name})" if name else "not fitting"
    if cause in (Cause.UPDATE_RESULT, Cause.RETRIES_EXHAUSTED) and name:
        return f"{name} (Update Result {result})" + (" after all retries" if cause is Cause.RETRIES_EXHAUSTED else "")
    return cause.value.replace("_", " ")


@dataclass
class JobState:
    """A job's position plus its audit trail; ``move`` refuses transitions the table does not allow."""

    phase: JobPhase = JobPhase.QUEUED
    attempt: int = 1
    cause: Cause | None = None
    result: int | None = None
    history: list[tuple[JobPhase, JobPhase, str]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    def move(self, to: JobPhase, note: str = "") -> None:
        if to == self.phase:
            return
        if to not in TRANSITIONS[self.phase]:
            raise IllegalTransition(f"{self.phase} -> {to}")
        self.history.append((self.phase, to, note))
        self.phase = to

    def fail(self, cause: Cause, result: int | None = None, note: str = "") -> None:
        self.cause, self.result = cause, result
        self.move(JobPhase.CANCELLED if cause is Cause.CANCELLED else JobPhase.FAILED, note or cause.value)
