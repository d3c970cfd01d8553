"""The pure part of an OTA update job: its phases, their legal transitions, why it failed, and its audit trail.

What an Object 5 reading means (execute now? confirmed? failed, and retry or not?) is not decided here: the job
feeds every reading into the core's :class:`~lwm2m_server.protocol.fwtracker.FirmwareUpdateTracker`, and the
retry rule by result code is :func:`lwm2m_server.protocol.fwupdate.retry_decision`. This module only names the
job's side of it (:class:`Cause`, :func:`failure_cause`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lwm2m_server.protocol.fwupdate import FailureClass, update_result


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


def failure_cause(failure: FailureClass | None) -> Cause:
    """The job's cause for a failure result that is not retried, by the core's class of that result
    (:mod:`lwm2m_server.protocol.fwupdate`): 2/3 do not fit (re-plan, never the same build again), 4/5 have used
    up their retries, 10 is a cancel, 6-9 are final."""
    if failure == "fit":
        return Cause.NOT_FITTING
    if failure == "retryable":
        return Cause.RETRIES_EXHAUSTED
    if failure == "cancelled":
        return Cause.CANCELLED
    return Cause.UPDATE_RESULT


class JobFailed(Exception):
    """The job ends: ``cause``, the Update Result behind it (if any) and a line for the operator."""

    def __init__(self, cause: Cause, result: int | None = None, detail: str = "") -> None:
        super().__init__(detail or cause.value)
        self.cause, self.result, self.detail = cause, result, detail


class JobLost(Exception):
    """Another node adopted the job (the device registered there): this node stops it without a word more."""


class JobRetry(Exception):
    """A retryable failure (Update Result 4/5, a lost push): back off and start the attempt again."""

    def __init__(self, result: int, detail: str) -> None:
        super().__init__(detail)
        self.result, self.detail = result, detail


def describe(cause: Cause | None, result: int | None) -> str:
    """One line for the operator: the Update Result name, 'timeout' or 'not fitting'."""
    code = update_result(result)
    name = (code.description if code is not None else f"result {result}") if result is not None else None
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
