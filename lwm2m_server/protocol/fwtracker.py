"""The server's view of one device's Object 5 (Firmware Update): State /5/0/3 and Update Result /5/0/5.

``FirmwareUpdateTracker`` is fed the values a device reports (notifications or reads, in any order, possibly
duplicated) plus what the server itself did (``begin``, ``executed``, ``reset``), and answers what happened and
what to do next (:attr:`FirmwareUpdateTracker.step`). It is pure: no I/O and no clock of its own; the OTA job
that owns it passes the time in (``now``) so that silence can be measured (:meth:`~FirmwareUpdateTracker.silent_for`)
and re-reads are done by the job.

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
from enum import StrEnum

from lwm2m_server.protocol.fwupdate import (
    FailureClass,
    FirmwareState,
    RetryDecision,
    UpdateResult,
    firmware_state,
    retry_decision,
    update_result,
)


class Phase(StrEnum):
    IDLE = "idle"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    UPDATING = "updating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Step(StrEnum):
    """What the server should do now."""

    WAIT = "wait"  # nothing decided yet: keep following (notifications, re-reads, the silence timeout)
    EXECUTE = "execute"  # the package is Downloaded and Update was not sent in this attempt
    CONFIRM = "confirm"  # result 1 and the device is back in Idle: confirm what it runs now
    VERIFY = "verify"  # back in Idle after Updating without any result: only what it runs now can tell
    FAIL = "fail"  # a failure result ended the attempt: ``failure_class`` says retry or not


_PROGRESS_PHASE = {
    FirmwareState.IDLE: Phase.IDLE,
    FirmwareState.DOWNLOADING: Phase.DOWNLOADING,
    FirmwareState.DOWNLOADED: Phase.DOWNLOADED,
    FirmwareState.UPDATING: Phase.UPDATING,
}
_TERMINAL = frozenset({Phase.SUCCEEDED, Phase.FAILED})


@dataclass(frozen=True)
class FwEvent:
    """What one ``feed`` did: the phase before and after, whether the input was used, and whether the device
    reported anything it had not reported before (``news``: progress for a silence timeout)."""

    previous: Phase
    phase: Phase
    state: FirmwareState | None
    result: UpdateResult | None
    accepted: bool
    note: str = ""
    news: bool = False

    @property
    def changed(self) -> bool:
        return self.previous != self.phase


class FirmwareUpdateTracker:
    """The server's view of one device's Object 5 instance."""

    def __init__(
        self, *, executed: bool = False, reported: tuple[int | None, int | None] = (None, None), now: float = 0.0
    ) -> None:
        """``reported``: the raw State and Result last seen (e.g. persisted before a restart); they are what
        :attr:`reported_state`/:attr:`reported_result` answer until the device reports again, nothing more."""
        self._phase = Phase.IDLE
        self._cause: UpdateResult | None = None
        self._state: FirmwareState | None = None
        self._result: UpdateResult | None = None
        self._progress = FirmwareState.IDLE
        self._attempt = executed
        self._executed = executed
        self._baseline: tuple[int | None, int | None] | None = None
        self._reported: tuple[int | None, int | None] = reported
        self._alive_at = now
        self._unknown = False

    # ---- what the server did ---------------------------------------------------------------------------
    def begin(self) -> None:
        """The server starts a new attempt (wrote the Package URI or starts pushing the Package)."""
        self._new_attempt(active=True)

    def reset(self) -> None:
        """The server reset the device's state machine (empty Package URI or a NUL Package)."""
        self._new_attempt(active=False)

    def resume(self, *, executed: bool) -> None:
        """The server restarted in the middle of an attempt (``executed``: Update was already sent): what the
        device reports next belongs to that attempt, nothing is left over."""
        self._phase, self._cause, self._progress = Phase.IDLE, None, FirmwareState.IDLE
        self._state = self._result = None
        self._attempt, self._executed, self._baseline = True, executed, None
        self._unknown = False

    def executed(self) -> None:
        """The server sent Execute /5/0/2 (Update) and the device accepted it."""
        self._executed = True
        self._attempt = True
        self._baseline = None
        self._unknown = False
        if self._phase is Phase.FAILED and self._state is FirmwareState.DOWNLOADED:
            # Update failed but the package is still there (result 8 in Downloaded): this is a retry.
            self._phase, self._cause = Phase.DOWNLOADED, None
            self._baseline = self._reported
            self._progress = FirmwareState.DOWNLOADED

    def _new_attempt(self, *, active: bool) -> None:
        leftover = self._reported[1] is not None and self._reported[1] != UpdateResult.INITIAL
        self._baseline = self._reported if leftover else None
        self._phase, self._cause = Phase.IDLE, None
        self._progress = FirmwareState.IDLE
        self._attempt = active
        self._executed = False
        self._unknown = False

    def alive(self, now: float) -> None:
        """Other evidence of progress at ``now`` (a block acknowledged, a block served, a registration)."""
        self._alive_at = max(self._alive_at, now)

    # ---- what the device reported ----------------------------------------------------------------------
    def feed(self, state: int | None, result: int | None, *, now: float | None = None) -> FwEvent:
        """Take a State and/or Update Result value (None = not in this report), reported at ``now``."""
        before = self._phase
        reported = (self._reported[0] if state is None else state, self._reported[1] if result is None else result)
        news = reported != self._reported
        self._reported = reported
        if news and now is not None:
            self.alive(now)
        new_state, new_result = firmware_state(state), update_result(result)
        bad: list[str] = []
        if state is not None and new_state is None:
            bad.append(f"state {state!r}")
        if result is not None and new_result is None:
            bad.append(f"result {result!r}")
        note = f"ignored unknown {' and '.join(bad)}" if bad else ""
        if new_state is None and new_result is None:
            return FwEvent(before, before, self._state, self._result, False, note or "nothing to apply", news)
        merged_state = new_state if new_state is not None else self._state
        merged_result = new_result if new_result is not None else self._result

        if self._baseline is not None:
            if reported == self._baseline:
                return FwEvent(before, before, self._state, self._result, False,
                               "value left over from the previous attempt", news)  # fmt: skip
            self._baseline = None

        accepted, why = self._apply(merged_state, merged_result)
        if accepted:
            self._state, self._result = merged_state, merged_result
        notes = "; ".join(x for x in (note, why) if x)
        return FwEvent(before, self._phase, merged_state, merged_result, accepted, notes, news)

    def _apply(self, state: FirmwareState | None, result: UpdateResult | None) -> tuple[bool, str]:
        self._unknown = False
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
                self._unknown = self._phase is Phase.UPDATING
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
    def reported_state(self) -> int | None:
        """The last State the device reported, raw (taken into account or not)."""
        return self._reported[0]

    @property
    def reported_result(self) -> int | None:
        """The last Update Result the device reported, raw (taken into account or not)."""
        return self._reported[1]

    @property
    def needs_reset(self) -> bool:
        """Before a new attempt: the device is not Idle, or still holds a result other than initial/success
        (a failure, a cancel, a deferral), so its state machine must be reset first."""
        state, result = self._reported
        clean = (UpdateResult.INITIAL, UpdateResult.SUCCESS, None)
        return state not in (FirmwareState.IDLE, None) or result not in clean

    @property
    def can_execute(self) -> bool:
        """Execute Update is only valid when the device is in Downloaded (else it answers 4.05)."""
        return self._state is FirmwareState.DOWNLOADED and self._phase in (Phase.DOWNLOADED, Phase.FAILED)

    @property
    def installed(self) -> bool:
        """Result 1 counted as this attempt's success and the device last said it is Idle (or never said)."""
        return self._phase is Phase.SUCCEEDED and self._reported[0] in (FirmwareState.IDLE, None)

    @property
    def outcome_unknown(self) -> bool:
        """The device came back Idle after Updating and reported no result (nor anything since): whether the
        update took only the installed version can tell."""
        return self._unknown

    @property
    def step(self) -> Step:
        """The next thing to do: fail on a failure result, execute once Downloaded (not yet executed in this
        attempt; a deferral included), confirm once installed, verify when the outcome is unknown, else wait."""
        if self._phase is Phase.FAILED:
            return Step.FAIL
        if self._phase is Phase.DOWNLOADED and self._state is FirmwareState.DOWNLOADED and not self._executed:
            return Step.EXECUTE
        if self.installed:
            return Step.CONFIRM
        if self._unknown:
            return Step.VERIFY
        return Step.WAIT

    @property
    def failure_class(self) -> FailureClass | None:
        """``retryable`` (4, 5), ``fit`` (2, 3), ``final`` (6-9), ``cancelled`` (10), ``deferred`` (11)."""
        return None if self._cause is None else self._cause.failure_class

    def retry(self, attempt: int, max_retries: int, backoff_s: float) -> RetryDecision:
        """After this attempt failed: retry (4, 5, while attempts remain, with exponential back-off) or not."""
        return retry_decision(None if self._cause is None else int(self._cause), attempt, max_retries, backoff_s)

    def silent_for(self, now: float) -> float:
        """Seconds since the device last reported something new (or showed other progress, :meth:`alive`)."""
        return max(0.0, now - self._alive_at)

    @property
    def finished(self) -> bool:
        return self._phase in _TERMINAL

    @property
    def summary(self) -> str:
        """``failed(connection_lost)``, ``downloaded(deferred)`` or just the phase."""
        return self._phase.value if self._cause is None else f"{self._phase.value}({self._cause.human})"

    def __repr__(self) -> str:
        return f"FirmwareUpdateTracker({self.summary}, state={self._state!r}, result={self._result!r})"
