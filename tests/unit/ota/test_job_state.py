"""The pure OTA job state machine: readings -> steps, failures -> retry/not-fitting/final, legal transitions."""

from __future__ import annotations

import pytest

from lwm2m_server.ota.job_state import (
    Cause,
    IllegalTransition,
    JobPhase,
    JobState,
    Step,
    describe,
    failure_class,
    interpret,
    on_failure,
)

P = JobPhase


@pytest.mark.parametrize(
    ("result", "cls"),
    [
        (0, None),
        (1, None),
        (2, "fit"),
        (3, "fit"),
        (4, "retryable"),
        (5, "retryable"),
        (6, "final"),
        (9, "final"),
        (10, "cancelled"),
        (11, None),
        (None, None),
    ],
)
def test_failure_classes(result: int | None, cls: str | None) -> None:
    assert failure_class(result) == cls


def test_downloaded_means_execute_even_without_state_1() -> None:
    # a client that jumps 0 -> 2 on push
    assert interpret(P.DELIVERING, 2, 0) == Step("execute")
    assert interpret(P.DOWNLOADING, 1, 0) == Step("wait")
    assert interpret(P.DOWNLOADING, 0, 0) == Step("wait")


def test_update_success_only_after_execute() -> None:
    assert interpret(P.UPDATING, 3, 0) == Step("wait")
    assert interpret(P.UPDATING, 0, 1) == Step("confirm")
    # a stale 'success' while still downloading is not a confirmation
    assert interpret(P.DOWNLOADING, 0, 1) == Step("wait")


def test_failures_stop_waiting_in_any_phase() -> None:
    assert interpret(P.DOWNLOADING, 0, 5) == Step("fail", 5)
    assert interpret(P.UPDATING, 2, 8) == Step("fail", 8)  # failed update back in Downloaded
    assert interpret(P.UPDATING, 0, 3) == Step("fail", 3)


def test_retryable_backs_off_exponentially_then_gives_up() -> None:
    delays = [on_failure(5, attempt, 3, 2.0) for attempt in (1, 2, 3)]
    assert [d.delay_s for d in delays] == [2.0, 4.0, 8.0]
    assert all(d.retry for d in delays)
    last = on_failure(4, 4, 3, 2.0)
    assert not last.retry and last.cause is Cause.RETRIES_EXHAUSTED


def test_not_fitting_and_final_are_never_retried() -> None:
    for result in (2, 3):
        d = on_failure(result, 1, 5, 1.0)
        assert not d.retry and d.cause is Cause.NOT_FITTING
    for result in (6, 7, 8, 9):
        d = on_failure(result, 1, 5, 1.0)
        assert not d.retry and d.cause is Cause.UPDATE_RESULT


def test_transitions_enforced_and_recorded() -> None:
    s = JobState()
    for to in (P.PREPARING, P.DELIVERING, P.DOWNLOADING, P.UPDATING, P.CONFIRMING, P.SUCCEEDED):
        s.move(to)
    assert s.terminal and [h[1] for h in s.history][-1] is P.SUCCEEDED
    with pytest.raises(IllegalTransition):
        s.move(P.PREPARING)
    t = JobState()
    with pytest.raises(IllegalTransition):
        t.move(P.SUCCEEDED)  # never succeed without confirming


def test_fail_and_cancel() -> None:
    s = JobState(phase=P.DOWNLOADING)
    s.fail(Cause.NOT_FITTING, 2)
    assert s.phase is P.FAILED and s.result == 2
    c = JobState(phase=P.UPDATING)
    c.fail(Cause.CANCELLED)
    assert c.phase is P.CANCELLED


def test_describe_names_the_cause() -> None:
    assert describe(Cause.NOT_FITTING, 2) == "not fitting (not enough flash)"
    assert describe(Cause.UPDATE_RESULT, 7) == "invalid URI (Update Result 7)"
    assert "after all retries" in describe(Cause.RETRIES_EXHAUSTED, 5)
    assert describe(Cause.TIMEOUT, None) == "timeout"
