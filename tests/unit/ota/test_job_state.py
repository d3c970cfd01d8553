"""The pure OTA job state machine: failures -> retry/not-fitting/final/cancelled (the core's rule), legal
transitions, the operator's one-line cause. What a reading means is the tracker's (tests/unit/protocol)."""

from __future__ import annotations

import pytest

from lwm2m_server.ota.job_state import Cause, IllegalTransition, JobPhase, JobState, describe, failure_cause
from lwm2m_server.protocol.fwupdate import retry_decision

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
        (11, "deferred"),
        (None, None),
        (99, None),
    ],
)
def test_retry_decision_carries_the_core_failure_class(result: int | None, cls: str | None) -> None:
    decision = retry_decision(result, 1, 3, 2.0)
    assert decision.failure == cls
    assert decision.retry == (cls == "retryable")


def test_retryable_backs_off_exponentially_then_gives_up() -> None:
    delays = [retry_decision(5, attempt, 3, 2.0) for attempt in (1, 2, 3)]
    assert [d.delay_s for d in delays] == [2.0, 4.0, 8.0]
    assert all(d.retry for d in delays)
    last = retry_decision(4, 4, 3, 2.0)
    assert not last.retry and last.exhausted and failure_cause(last.failure) is Cause.RETRIES_EXHAUSTED


def test_not_fitting_final_and_cancelled_are_never_retried() -> None:
    for result in (2, 3):
        d = retry_decision(result, 1, 5, 1.0)
        assert not d.retry and not d.exhausted and failure_cause(d.failure) is Cause.NOT_FITTING
    for result in (6, 7, 8, 9):
        d = retry_decision(result, 1, 5, 1.0)
        assert not d.retry and failure_cause(d.failure) is Cause.UPDATE_RESULT
    d = retry_decision(10, 1, 5, 1.0)
    assert not d.retry and failure_cause(d.failure) is Cause.CANCELLED
    assert failure_cause(None) is Cause.UPDATE_RESULT


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
