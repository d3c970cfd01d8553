"""The tracker as the OTA job drives it: begin/executed/reset/resume interleaved with reports, the step it answers
(wait/execute/confirm/fail), the retry rule by result code, the reset decision, and the silence clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.protocol.fwtracker import FirmwareUpdateTracker, Phase, Step
from lwm2m_server.protocol.fwupdate import FirmwareState, UpdateResult

S, R = FirmwareState, UpdateResult


def job_tracker(*reported: tuple[int | None, int | None]) -> FirmwareUpdateTracker:
    """A job's tracker after its PREPARING read(s) and ``begin()``."""
    t = FirmwareUpdateTracker()
    for state, result in reported:
        t.feed(state, result)
    t.begin()
    return t


def test_pull_attempt_step_by_step() -> None:
    t = job_tracker((0, 0))
    assert t.step is Step.WAIT
    t.feed(1, 0)
    assert t.step is Step.WAIT and t.phase is Phase.DOWNLOADING
    t.feed(2, None)
    assert t.step is Step.EXECUTE and t.can_execute
    t.executed()
    assert t.step is Step.WAIT  # Update sent once: never execute twice in one attempt
    t.feed(3, None)
    assert t.step is Step.WAIT and t.phase is Phase.UPDATING
    t.feed(None, 1)  # result 1 while still Updating: success, but the device has not rebooted into it yet
    assert t.phase is Phase.SUCCEEDED and not t.installed and t.step is Step.WAIT
    t.feed(0, None)
    assert t.installed and t.step is Step.CONFIRM


def test_idle_without_a_result_after_updating_asks_for_verification() -> None:
    t = job_tracker((0, 0))
    t.feed(2, 0)
    t.executed()
    t.feed(3, 0)
    event = t.feed(0, None)  # rebooted into something, but says nothing about how it went
    assert not event.accepted and "outcome unknown" in event.note
    assert t.outcome_unknown and t.step is Step.VERIFY and t.phase is Phase.UPDATING
    t.feed(None, 1)  # the result arrives after all
    assert not t.outcome_unknown and t.step is Step.CONFIRM
    u = job_tracker((0, 0))
    u.feed(2, 0)
    u.executed()
    u.feed(3, 0)
    u.feed(0, 0)
    u.feed(0, 8)  # or the failure
    assert not u.outcome_unknown and u.step is Step.FAIL
    v = job_tracker((0, 0))
    v.feed(1, 0)
    v.feed(0, 0)  # a stale Idle while downloading is not an unknown outcome
    assert not v.outcome_unknown and v.step is Step.WAIT


def test_push_client_without_state_1_is_executed_on_downloaded() -> None:
    t = job_tracker((0, 0))
    t.feed(2, 0)  # 0 -> 2: this client never shows Downloading
    assert t.step is Step.EXECUTE


def test_leftover_success_of_the_previous_update_is_no_confirmation() -> None:
    t = job_tracker((0, 1))  # the last update succeeded: no reset needed, but 1 is not this attempt's
    assert not t.needs_reset
    t.feed(0, 1)  # a re-read still showing it
    assert t.step is Step.WAIT and t.phase is Phase.IDLE
    t.feed(1, 0)
    t.feed(0, 1)  # stale success while downloading (no Execute yet)
    assert t.step is Step.WAIT


@pytest.mark.parametrize("result", [4, 5])
def test_retryable_results_fail_the_attempt_and_are_retried(result: int) -> None:
    t = job_tracker((0, 0))
    t.feed(1, 0)
    t.feed(0, result)
    assert t.step is Step.FAIL and t.failure_class == "retryable"
    decision = t.retry(attempt=1, max_retries=2, backoff_s=1.5)
    assert decision.retry and decision.delay_s == 1.5
    assert not t.retry(attempt=3, max_retries=2, backoff_s=1.5).retry
    assert t.retry(attempt=3, max_retries=2, backoff_s=1.5).exhausted


@pytest.mark.parametrize(("result", "klass"), [(2, "fit"), (3, "fit"), (6, "final"), (8, "final"), (10, "cancelled")])
def test_other_failures_are_not_retried(result: int, klass: str) -> None:
    t = job_tracker((0, 0))
    t.feed(2, 0)
    t.executed()
    t.feed(3, 0)
    t.feed(0, result)
    assert t.step is Step.FAIL and t.failure_class == klass
    decision = t.retry(attempt=1, max_retries=5, backoff_s=1.0)
    assert not decision.retry and not decision.exhausted and decision.failure == klass


def test_deferred_in_downloaded_is_still_executed_then_waits() -> None:
    t = job_tracker((0, 0))
    t.feed(2, 11)
    assert t.step is Step.EXECUTE and t.cause is R.DEFERRED
    t.executed()
    t.feed(2, 11)  # deferred again after the Execute: keep waiting, not a failure
    assert t.step is Step.WAIT and t.phase is Phase.DOWNLOADED


def test_update_failed_in_downloaded_is_a_failure_until_executed_again() -> None:
    t = job_tracker((0, 0))
    t.feed(2, 0)
    t.executed()
    t.feed(2, 8)
    assert t.step is Step.FAIL and t.failure_class == "final"


@pytest.mark.parametrize(
    ("state", "result", "needs"),
    [(0, 0, False), (0, 1, False), (None, None, False), (1, 0, True), (2, 0, True), (3, 0, True), (0, 4, True),
     (0, 10, True), (2, 11, True), (0, 42, True)],
)
def test_needs_reset_before_a_new_attempt(state: int | None, result: int | None, needs: bool) -> None:
    t = FirmwareUpdateTracker()
    t.feed(state, result)
    assert t.needs_reset is needs


def test_reset_then_begin_ignores_the_failure_left_over() -> None:
    t = FirmwareUpdateTracker()
    t.feed(0, 4)  # the previous attempt lost its connection
    assert t.phase is Phase.FAILED and t.needs_reset
    t.reset()
    t.feed(0, 4)  # a non-conforming client keeps the result after the reset
    assert t.phase is Phase.IDLE
    t.begin()
    t.feed(0, 4)
    assert t.step is Step.WAIT
    t.feed(1, 0)
    assert t.phase is Phase.DOWNLOADING and t.reported_result == 0


def test_resume_after_a_server_restart() -> None:
    downloading = FirmwareUpdateTracker(reported=(1, 0))
    assert downloading.reported_state == 1 and downloading.phase is Phase.IDLE  # persisted values are only that
    downloading.resume(executed=False)
    downloading.feed(2, 0)
    assert downloading.step is Step.EXECUTE
    updating = FirmwareUpdateTracker(reported=(3, 0))
    updating.resume(executed=True)
    updating.feed(0, 1)  # it rebooted into the new image while the server was down
    assert updating.step is Step.CONFIRM
    stale = FirmwareUpdateTracker()
    stale.resume(executed=False)
    stale.feed(0, 1)  # success without an Execute in this attempt
    assert stale.step is Step.WAIT


def test_silence_clock_counts_only_news() -> None:
    t = FirmwareUpdateTracker(now=100.0)
    t.begin()
    assert t.feed(1, 0, now=101.0).news
    assert t.silent_for(105.0) == 4.0
    assert not t.feed(1, 0, now=104.0).news  # the same values again: liveness, not progress
    assert t.silent_for(105.0) == 4.0
    t.alive(106.0)  # a block acknowledged
    assert t.silent_for(107.0) == 1.0
    t.alive(50.0)  # a late, older event never moves the clock back
    assert t.silent_for(107.0) == 1.0
    assert t.feed(None, 5, now=108.0).news and t.silent_for(108.0) == 0.0


# ---- properties: the job's whole conversation, in any order ------------------------------------------------
report = st.tuples(st.just("feed"), st.none() | st.integers(-1, 4), st.none() | st.integers(-1, 12))
action = st.sampled_from([("begin", None, None), ("executed", None, None), ("reset", None, None)])
conversation = st.lists(st.one_of(report, report, report, action), max_size=40)
ORDER = [Phase.IDLE, Phase.DOWNLOADING, Phase.DOWNLOADED, Phase.UPDATING]


@given(conversation)
def test_any_conversation_never_crashes_and_never_moves_back_illegally(
    steps: list[tuple[str, int | None, int | None]],
) -> None:
    t = FirmwareUpdateTracker()
    executed = seen_updating = False
    for kind, state, result in steps:
        before = t.phase
        if kind == "feed":
            event = t.feed(state, result, now=1.0)
            assert event.previous is before and event.phase is t.phase
            if before in ORDER and t.phase in ORDER:  # progress only forward, without a server action
                assert ORDER.index(t.phase) >= ORDER.index(before)
            if before is Phase.SUCCEEDED:  # a success is never undone by a report
                assert t.phase is Phase.SUCCEEDED
            if t.phase is Phase.SUCCEEDED and before is not Phase.SUCCEEDED:
                assert t.result is R.SUCCESS  # only result 1 (this report's or the last one taken) succeeds
        else:
            getattr(t, kind)()
            executed = kind == "executed" or (executed and kind not in ("begin", "reset"))
            if kind in ("begin", "reset"):
                seen_updating = False
                assert t.phase is Phase.IDLE and t.step is Step.WAIT
        seen_updating = seen_updating or t.phase is Phase.UPDATING
        step = t.step
        assert step in Step
        if step is Step.EXECUTE:
            assert t.can_execute and t.state is S.DOWNLOADED and not executed
        if step is Step.CONFIRM:
            assert t.installed and t.reported_state in (S.IDLE, None)
        if step is Step.VERIFY:
            assert t.outcome_unknown and t.phase is Phase.UPDATING and t.reported_state == S.IDLE
        if step is Step.FAIL:
            assert t.cause is not None and t.failure_class in {"retryable", "fit", "final", "cancelled"}
            assert t.retry(1, 3, 1.0).retry == (t.failure_class == "retryable")
        assert t.needs_reset == (
            t.reported_state not in (0, None) or t.reported_result not in (0, 1, None)
        )


@given(conversation)
def test_a_started_attempt_confirms_only_after_execute_or_updating(
    steps: list[tuple[str, int | None, int | None]],
) -> None:
    t = FirmwareUpdateTracker()
    t.begin()
    evidence = False
    for kind, state, result in steps:
        if kind == "feed":
            t.feed(state, result)
        elif kind == "executed":
            t.executed()
            evidence = True
        else:
            break  # only the first attempt's conversation
        evidence = evidence or t.phase is Phase.UPDATING
        if t.step is Step.CONFIRM:
            assert evidence
