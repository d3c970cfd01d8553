"""Object 5 (Firmware Update) as the server sees it: State /5/0/3 and Update Result /5/0/5.

``FirmwareUpdateTracker`` is fed the values a device reports (notifications or reads, in any order, possibly
duplicated) plus what the server itself did (``begin``, ``executed``, ``reset``), and answers what happened.
It is pure: no clock and no I/O; timeouts and re-reads belong to the OTA job that owns it.

Rules, because real clients differ and notifications race:
- Progress within one attempt only moves forward (idle < downloading < downloaded < updating). A value that
  would move it back without a result code to explain it (a stale Downloading after Downloaded, an Idle
  after Downloading) is ignored. Clients that skip State 1 (0 -> 2 during a push) are fine.
- Results 2-9 end the attempt as failed, 10 as cancelled; 11 (deferred) keeps it in Downloaded.
- Result 1 is success when the server executed Update in this attempt, or the device was seen Updating,
  or no attempt is running (the tracker only observes). A device that reboots and comes back Idle with
  result 1 has therefore succeeded. Idle with result 0 after Updating leaves the outcome unknown: the job
  must confirm it by reading the installed version.
- ``begin()`` starts an attempt; a failure/success value left over from the previous attempt that is still
  reported unchanged is ignored until the device reports something new.
- A finished attempt (succeeded/failed) is sticky until ``begin``/``executed``/``reset``, except that a
  failure can still turn into success when result 1 arrives after an Execute.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Literal

from lwm2m_server.protocol.paths import LwM2MPath

FW_STATE = LwM2MPath(5, 0, 3)
FW_RESULT = LwM2MPath(5, 0, 5)
FW_PACKAGE = LwM2MPath(5, 0, 0)
FW_PACKAGE_URI = LwM2MPath(5, 0, 1)
FW_UPDATE = LwM2MPath(5, 0, 2)
FW_PROTOCOLS = LwM2MPath(5, 0, 8)
FW_DELIVERY = LwM2MPath(5, 0, 9)

PROTOCOL_SCHEMES: dict[int, str] = {0: "coap", 1: "coaps", 2: "http", 3: "https", 4: "coap+tcp", 5: "coaps+tcp"}
"""Firmware Update Protocol Support (/5/0/8) number -> Package URI scheme."""

FailureClass = Literal["retryable", "fit", "final", "cancelled", "deferred"]


class FirmwareState(IntEnum):
    IDLE = 0
    DOWNLOADING = 1
    DOWNLOADED = 2
    UPDATING = 3


DEVICE_TRANSITIONS: dict[FirmwareState, frozenset[FirmwareState]] = {
    FirmwareState.IDLE: frozenset(FirmwareState) - {FirmwareState.UPDATING},  # DOWNLOADED: push without State 1
    FirmwareState.DOWNLOADING: frozenset(FirmwareState) - {FirmwareState.UPDATING},
    FirmwareState.DOWNLOADED: frozenset(FirmwareState),  # a new Package/URI write starts over
    FirmwareState.UPDATING: frozenset({FirmwareState.IDLE, FirmwareState.DOWNLOADED, FirmwareState.UPDATING}),
}
"""The client's own State machine (TS Core E.6 Figure): Updating only from Downloaded (Execute); an update ends
in Idle (success or failure) or back in Downloaded (failed, package kept). Any state may go back to Idle."""


class FirmwareStateError(ValueError):
    """A client moved its State in a way the Object 5 state machine does not allow."""


def device_transition(current: int, new: int) -> FirmwareState:
    """The client side: ``new`` if State may move there from ``current``, else FirmwareStateError."""
    old, to = FirmwareState(current), FirmwareState(new)
    if to not in DEVICE_TRANSITIONS[old]:
        raise FirmwareStateError(f"firmware state {old.name.lower()} -> {to.name.lower()} is not allowed")
    return to


class UpdateResult(IntEnum):
    INITIAL = 0
    SUCCESS = 1
    NOT_ENOUGH_FLASH = 2
    OUT_OF_RAM = 3
    CONNECTION_LOST = 4
    INTEGRITY_FAILURE = 5
    UNSUPPORTED_PACKAGE = 6
    INVALID_URI = 7
    UPDATE_FAILED = 8
    UNSUPPORTED_PROTOCOL = 9
    CANCELLED = 10
    DEFERRED = 11

    @property
    def human(self) -> str:
        """``initial``, ``success``, ``not_enough_flash``, ... ``deferred``."""
        return self.name.lower()

    @property
    def is_failure(self) -> bool:
        return 2 <= self.value <= 9

    @property
    def failure_class(self) -> FailureClass | None:
        return _FAILURE_CLASS.get(self)

    @property
    def description(self) -> str:
        """For operators: ``not enough flash``, ``integrity check failure``, ..."""
        return _DESCRIPTIONS[self]


def update_result(value: int | None) -> UpdateResult | None:
    """A reported Update Result as the enum; None when absent or not a defined code."""
    return _coerce_result(value)


_DESCRIPTIONS: dict[UpdateResult, str] = {
    UpdateResult.INITIAL: "initial",
    UpdateResult.SUCCESS: "success",
    UpdateResult.NOT_ENOUGH_FLASH: "not enough flash",
    UpdateResult.OUT_OF_RAM: "out of RAM",
    UpdateResult.CONNECTION_LOST: "connection lost",
    UpdateResult.INTEGRITY_FAILURE: "integrity check failure",
    UpdateResult.UNSUPPORTED_PACKAGE: "unsupported package type",
    UpdateResult.INVALID_URI: "invalid URI",
    UpdateResult.UPDATE_FAILED: "firmware update failed",
    UpdateResult.UNSUPPORTED_PROTOCOL: "unsupported protocol",
    UpdateResult.CANCELLED: "cancelled",
    UpdateResult.DEFERRED: "deferred",
}


_FAILURE_CLASS: dict[UpdateResult, FailureClass] = {
    UpdateResult.CONNECTION_LOST: "retryable",
    UpdateResult.INTEGRITY_FAILURE: "retryable",
    UpdateResult.NOT_ENOUGH_FLASH: "fit",
    UpdateResult.OUT_OF_RAM: "fit",
    UpdateResult.UNSUPPORTED_PACKAGE: "final",
    UpdateResult.INVALID_URI: "final",
    UpdateResult.UPDATE_FAILED: "final",
    UpdateResult.UNSUPPORTED_PROTOCOL: "final",
    UpdateResult.CANCELLED: "cancelled",
    UpdateResult.DEFERRED: "deferred",
}


class Phase(StrEnum):
    IDLE = "idle"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    UPDATING = "updating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_PROGRESS_PHASE = {
    FirmwareState.IDLE: Phase.IDLE,
    FirmwareState.DOWNLOADING: Phase.DOWNLOADING,
    FirmwareState.DOWNLOADED: Phase.DOWNLOADED,
    FirmwareState.UPDATING: Phase.UPDATING,
}
_TERMINAL = frozenset({Phase.SUCCEEDED, Phase.FAILED})


@dataclass(frozen=True)
class FwEvent:
    """What one ``feed`` did: the phase before and after, and whether the input was used."""

    previous: Phase
    phase: Phase
    state: FirmwareState | None
    result: UpdateResult | None
    accepted: bool
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.previous != self.phase


def _coerce_state(value: int | None) -> FirmwareState | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return FirmwareState(value)
    except ValueError:
        return None


def _coerce_result(value: int | None) -> UpdateResult | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return UpdateResult(value)
    except ValueError:
        return None


class FirmwareUpdateTracker:
    """The server's view of one device's Object 5 instance."""

    def __init__(self, *, executed: bool = False) -> None:
        self._phase = Phase.IDLE
        self._cause: UpdateResult | None = None
        self._state: FirmwareState | None = None
        self._result: UpdateResult | None = None
        self._progress = FirmwareState.IDLE
        self._attempt = executed
        self._executed = executed
        self._baseline: tuple[FirmwareState | None, UpdateResult | None] | None = None

    # ---- what the server did ---------------------------------------------------------------------------
    def begin(self) -> None:
        """The server starts a new attempt (wrote the Package URI or starts pushing the Package)."""
        self._new_attempt(active=True)

    def reset(self) -> None:
        """The server reset the device's state machine (empty Package URI or a NUL Package)."""
        self._new_attempt(active=False)

    def executed(self) -> None:
        """The server sent Execute /5/0/2 (Update) and the device accepted it."""
        self._executed = True
        self._attempt = True
        self._baseline = None
        if self._phase is Phase.FAILED and self._state is FirmwareState.DOWNLOADED:
            # Update failed but the package is still there (result 8 in Downloaded): this is a retry.
            self._phase, self._cause = Phase.DOWNLOADED, None
            self._baseline = (self._state, self._result)
            self._progress = FirmwareState.DOWNLOADED

    def _new_attempt(self, *, active: bool) -> None:
        leftover = self._result is not None and self._result is not UpdateResult.INITIAL
        self._baseline = (self._state, self._result) if leftover else None
        self._phase, self._cause = Phase.IDLE, None
        self._progress = FirmwareState.IDLE
        self._attempt = active
        self._executed = False

    # ---- what the device reported ----------------------------------------------------------------------
    def feed(self, state: int | None, result: int | None) -> FwEvent:
        """Take a State and/or Update Result value (None = not in this report)."""
        before = self._phase
        new_state, new_result = _coerce_state(state), _coerce_result(result)
        bad: list[str] = []
        if state is not None and new_state is None:
            bad.append(f"state {state!r}")
        if result is not None and new_result is None:
            bad.append(f"result {result!r}")
        note = f"ignored unknown {' and '.join(bad)}" if bad else ""
        if new_state is None and new_result is None:
            return FwEvent(before, before, self._state, self._result, False, note or "nothing to apply")
        merged_state = new_state if new_state is not None else self._state
        merged_result = new_result if new_result is not None else self._result

        if self._baseline is not None:
            if (merged_state, merged_result) == self._baseline:
                return FwEvent(before, before, self._state, self._result, False,
                               "value left over from the previous attempt")
            self._baseline = None

        accepted, why = self._apply(merged_state, merged_result)
        if accepted:
            self._state, self._result = merged_state, merged_result
        notes = "; ".join(x for x in (note, why) if x)
        return FwEvent(before, self._phase, merged_state, merged_result, accepted, notes)

    def _apply(self, state: FirmwareState | None, result: UpdateResult | None) -> tuple[bool, str]:
        if result is UpdateResult.SUCCESS:
            if self._executed or self._progress is FirmwareState.UPDATING or not self._attempt:
                self._phase, self._cause = Phase.SUCCEEDED, None
                self._progress = FirmwareState.UPDATING
                return True, ""
            return False, "success result without an Update in this attempt (stale)"
        if self._phase in _TERMINAL:
            if (state, result) == (self._state, self._result):
                return True, ""
            return False, f"attempt already {self._phase}; begin() a new one"
        if result is not None and (result.is_failure or result is UpdateResult.CANCELLED):
            self._phase, self._cause = Phase.FAILED, result
            return True, ""
        if result is UpdateResult.DEFERRED:
            if self._progress is FirmwareState.UPDATING:
                return False, "stale deferral after updating"
            self._cause = result
            self._phase = Phase.DOWNLOADED
            self._progress = max(self._progress, FirmwareState.DOWNLOADED)
            return True, ""
        # result is INITIAL (or unknown so far): the phase follows State, forward only.
        if state is None:
            return True, ""
        if state < self._progress:
            if self._progress is FirmwareState.UPDATING and state is FirmwareState.IDLE:
                return False, "idle without a result after updating: outcome unknown, confirm the installed version"
            return False, f"stale {state.name.lower()} after {self._progress.name.lower()}"
        self._progress = state
        self._phase = _PROGRESS_PHASE[state]
        if self._cause is UpdateResult.DEFERRED and state is not FirmwareState.DOWNLOADED:
            self._cause = None
        return True, ""

    # ---- answers ---------------------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def cause(self) -> UpdateResult | None:
        """The result code behind a failed phase (or DEFERRED while waiting in Downloaded)."""
        return self._cause

    @property
    def state(self) -> FirmwareState | None:
        """The last State value taken into account."""
        return self._state

    @property
    def result(self) -> UpdateResult | None:
        """The last Update Result value taken into account."""
        return self._result

    @property
    def can_execute(self) -> bool:
        """Execute Update is only valid when the device is in Downloaded (else it answers 4.05)."""
        return self._state is FirmwareState.DOWNLOADED and self._phase in (Phase.DOWNLOADED, Phase.FAILED)

    @property
    def failure_class(self) -> FailureClass | None:
        """``retryable`` (4, 5), ``fit`` (2, 3), ``final`` (6-9), ``cancelled`` (10), ``deferred`` (11)."""
        return None if self._cause is None else self._cause.failure_class

    @property
    def finished(self) -> bool:
        return self._phase in _TERMINAL

    @property
    def summary(self) -> str:
        """``failed(connection_lost)``, ``downloaded(deferred)`` or just the phase."""
        return self._phase.value if self._cause is None else f"{self._phase.value}({self._cause.human})"

    def __repr__(self) -> str:
        return f"FirmwareUpdateTracker({self.summary}, state={self._state!r}, result={self._result!r})"
