"""Object 5 tracker: every transition, skipped states, duplicates, stale and out-of-order values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.protocol.fwtracker import FirmwareUpdateTracker, FwEvent, Phase
from lwm2m_server.protocol.fwupdate import FirmwareState, UpdateResult

S, R = FirmwareState, UpdateResult


def run(tracker: FirmwareUpdateTracker, *steps: tuple[int | None, int | None]) -> list[FwEvent]:
    return [tracker.feed(s, r) for s, r in steps]


def started() -> FirmwareUpdateTracker:
    t = FirmwareUpdateTracker()
    t.begin()
    return t


# ---- enums -----------------------------------------------------------------------------------------
def test_enum_values_and_names() -> None:
    assert [int(s) for s in FirmwareState] == [0, 1, 2, 3]
    assert [r.human for r in UpdateResult] == [
        "initial",
        "success",
        "not_enough_flash",
        "out_of_ram",
        "connection_lost",
        "integrity_failure",
        "unsupported_package",
        "invalid_uri",
        "update_failed",
        "unsupported_protocol",
        "cancelled",
        "deferred",
    ]
    assert [int(r) for r in UpdateResult] == list(range(12))


@pytest.mark.parametrize(
    ("result", "klass"),
    [
        (2, "fit"),
        (3, "fit"),
        (4, "retryable"),
        (5, "retryable"),
        (6, "final"),
        (7, "final"),
        (8, "final"),
        (9, "final"),
        (10, "cancelled"),
        (11, "deferred"),
        (0, None),
        (1, None),
    ],
)
def test_failure_class_per_result(result: int, klass: str | None) -> None:
    assert UpdateResult(result).failure_class == klass
    assert UpdateResult(result).is_failure == (2 <= result <= 9)


# ---- the happy paths -------------------------------------------------------------------------------
def test_pull_happy_path_every_step() -> None:
    t = started()
    assert t.phase is Phase.IDLE and not t.can_execute and not t.finished
    e1, e2 = run(t, (0, 0), (1, 0))
    assert (e1.changed, e2.changed) == (False, True)
    assert t.phase is Phase.DOWNLOADING and not t.can_execute
    (e3,) = run(t, (2, 0))
    assert e3.previous is Phase.DOWNLOADING and e3.phase is Phase.DOWNLOADED and t.can_execute
    t.executed()
    (e4,) = run(t, (3, 0))
    assert e4.accepted and t.phase is Phase.UPDATING and not t.can_execute
    (e5,) = run(t, (0, 1))
    assert e5.changed and t.phase is Phase.SUCCEEDED and t.finished and t.failure_class is None
    assert t.summary == "succeeded" and t.state is S.IDLE and t.result is R.SUCCESS


def test_push_client_skips_downloading() -> None:
    t = started()
    run(t, (0, 0), (2, 0))
    assert t.phase is Phase.DOWNLOADED and t.can_execute


def test_separate_state_and_result_notifications() -> None:
    t = started()
    run(t, (1, None), (None, 0), (2, None))
    assert t.phase is Phase.DOWNLOADED and t.result is R.INITIAL
    t.executed()
    run(t, (3, None), (None, 1))
    assert t.phase is Phase.SUCCEEDED


def test_success_updating_to_idle_with_result_1_without_execute_call() -> None:
    t = started()
    run(t, (2, 0), (3, 0), (0, 1))
    assert t.phase is Phase.SUCCEEDED


def test_result_1_any_time_after_execute() -> None:
    t = started()
    run(t, (2, 0))
    t.executed()
    (e,) = run(t, (2, 1))  # some clients report the result before leaving Downloaded
    assert e.accepted and t.phase is Phase.SUCCEEDED


def test_device_reboots_and_comes_back_idle_with_result_1() -> None:
    t = started()
    run(t, (1, 0), (2, 0))
    t.executed()
    run(t, (0, 1))  # never saw Updating: it rebooted into the new firmware
    assert t.phase is Phase.SUCCEEDED


def test_tracker_restored_after_server_restart() -> None:
    t = FirmwareUpdateTracker(executed=True)
    run(t, (0, 1))
    assert t.phase is Phase.SUCCEEDED


def test_idle_without_result_after_updating_is_unknown() -> None:
    t = started()
    run(t, (2, 0))
    t.executed()
    run(t, (3, 0))
    (e,) = run(t, (0, 0))
    assert not e.accepted and t.phase is Phase.UPDATING and "outcome unknown" in e.note


# ---- duplicates and stale values -------------------------------------------------------------------
def test_duplicates_do_not_change_anything() -> None:
    t = started()
    events = run(t, (1, 0), (1, 0), (1, 0))
    assert [e.changed for e in events] == [True, False, False] and all(e.accepted for e in events)
    t2 = started()
    run(t2, (0, 4), (0, 4))
    assert t2.phase is Phase.FAILED


def test_stale_downloading_after_downloaded_does_not_regress() -> None:
    t = started()
    run(t, (1, 0), (2, 0))
    (e,) = run(t, (1, 0))
    assert not e.accepted and "stale" in e.note
    assert t.phase is Phase.DOWNLOADED and t.state is S.DOWNLOADED and t.can_execute


def test_stale_idle_during_download_is_ignored() -> None:
    t = started()
    run(t, (1, 0))
    (e,) = run(t, (0, 0))
    assert not e.accepted and t.phase is Phase.DOWNLOADING


def test_stale_downloaded_after_updating_is_ignored() -> None:
    t = started()
    run(t, (2, 0))
    t.executed()
    run(t, (3, 0))
    (e,) = run(t, (2, 0))
    assert not e.accepted and t.phase is Phase.UPDATING and not t.can_execute


def test_stale_values_after_success_are_ignored() -> None:
    t = started()
    run(t, (2, 0), (3, 0), (0, 1))
    for stale in ((3, 0), (2, 0), (1, 0), (0, 4)):
        (e,) = run(t, stale)
        assert not e.accepted
    assert t.phase is Phase.SUCCEEDED


def test_stale_downloading_after_failure_is_ignored() -> None:
    t = started()
    run(t, (1, 0), (0, 4))
    (e,) = run(t, (1, 0))
    assert not e.accepted and "begin" in e.note
    assert t.phase is Phase.FAILED and t.cause is R.CONNECTION_LOST


def test_leftover_success_from_previous_update_is_not_this_attempts_success() -> None:
    t = FirmwareUpdateTracker()
    run(t, (0, 1))  # observing only: the last update succeeded
    assert t.phase is Phase.SUCCEEDED
    t.begin()
    assert t.phase is Phase.IDLE
    (e,) = run(t, (0, 1))
    assert not e.accepted and "previous attempt" in e.note and t.phase is Phase.IDLE
    run(t, (1, 0), (2, 0))
    assert t.phase is Phase.DOWNLOADED


def test_success_result_without_update_is_ignored_in_an_attempt() -> None:
    t = started()
    run(t, (1, 0))
    (e,) = run(t, (1, 1))
    assert not e.accepted and t.phase is Phase.DOWNLOADING


def test_leftover_failure_from_previous_attempt_is_ignored_until_something_new() -> None:
    t = started()
    run(t, (0, 4))
    assert t.failure_class == "retryable"
    t.begin()
    assert t.phase is Phase.IDLE and t.cause is None and t.failure_class is None
    (e,) = run(t, (0, 4))
    assert not e.accepted
    run(t, (1, 0), (0, 5))
    assert t.phase is Phase.FAILED and t.cause is R.INTEGRITY_FAILURE


# ---- failures ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("result", list(range(2, 10)))
def test_each_failure_during_download(result: int) -> None:
    t = started()
    run(t, (1, 0), (0, result))
    assert t.phase is Phase.FAILED and t.cause == result and t.finished
    assert t.failure_class == UpdateResult(result).failure_class
    assert t.summary == f"failed({UpdateResult(result).human})"
    assert not t.can_execute


def test_failure_reported_before_state_changes() -> None:
    t = started()
    run(t, (1, 0), (None, 3))
    assert t.phase is Phase.FAILED and t.failure_class == "fit" and t.state is S.DOWNLOADING


def test_update_failed_in_downloaded_then_retry_execute() -> None:
    t = started()
    run(t, (2, 0))
    t.executed()
    run(t, (3, 0), (2, 8))
    assert t.phase is Phase.FAILED and t.failure_class == "final" and t.can_execute
    t.executed()
    assert t.phase is Phase.DOWNLOADED and t.cause is None
    (e,) = run(t, (2, 8))
    assert not e.accepted  # the old failure, still reported
    run(t, (3, 0), (0, 1))
    assert t.phase is Phase.SUCCEEDED


def test_failure_then_success_after_execute() -> None:
    t = started()
    run(t, (2, 0))
    t.executed()
    run(t, (2, 8), (0, 1))
    assert t.phase is Phase.SUCCEEDED


def test_cancel() -> None:
    t = started()
    run(t, (1, 0), (0, 10))
    assert t.phase is Phase.FAILED and t.failure_class == "cancelled" and t.cause is R.CANCELLED


def test_deferred_then_accepted() -> None:
    t = started()
    run(t, (2, 0))
    t.executed()
    run(t, (2, 11))
    assert t.phase is Phase.DOWNLOADED and t.failure_class == "deferred" and t.summary == "downloaded(deferred)"
    assert t.can_execute and not t.finished
    run(t, (3, 0))
    assert t.phase is Phase.UPDATING and t.cause is None
    run(t, (0, 1))
    assert t.phase is Phase.SUCCEEDED


def test_stale_deferral_after_updating_is_ignored() -> None:
    t = started()
    run(t, (2, 0), (3, 0))
    (e,) = run(t, (2, 11))
    assert not e.accepted and t.phase is Phase.UPDATING


def test_deferred_without_state() -> None:
    t = started()
    run(t, (None, 11))
    assert t.phase is Phase.DOWNLOADED and t.failure_class == "deferred"


# ---- reset and begin --------------------------------------------------------------------------------
def test_reset_returns_to_idle() -> None:
    t = started()
    run(t, (1, 0), (2, 0))
    t.reset()
    assert t.phase is Phase.IDLE and not t.finished
    run(t, (0, 0))
    assert t.phase is Phase.IDLE and t.state is S.IDLE and not t.can_execute


def test_begin_after_failure_starts_fresh() -> None:
    t = started()
    run(t, (1, 0), (0, 4))
    t.begin()
    run(t, (1, 0), (2, 0))
    assert t.phase is Phase.DOWNLOADED and t.cause is None


# ---- bad input --------------------------------------------------------------------------------------
def test_unknown_values_are_ignored() -> None:
    t = started()
    (e,) = run(t, (7, 99))
    assert not e.accepted and "state 7" in e.note and "result 99" in e.note and t.phase is Phase.IDLE
    (e,) = run(t, (1, 42))
    assert e.accepted and t.phase is Phase.DOWNLOADING and "result 42" in e.note
    (e,) = run(t, (None, None))
    assert not e.accepted
    (e,) = run(t, (True, None))  # type: ignore[arg-type]
    assert not e.accepted
    assert "FirmwareUpdateTracker(downloading" in repr(t)


# ---- properties over random sequences ----------------------------------------------------------------
reports = st.lists(st.tuples(st.none() | st.integers(-1, 4), st.none() | st.integers(-1, 12)), max_size=30)


@given(reports)
def test_progress_never_regresses_without_a_result(steps: list[tuple[int | None, int | None]]) -> None:
    t = started()
    order = [Phase.IDLE, Phase.DOWNLOADING, Phase.DOWNLOADED, Phase.UPDATING]
    last = Phase.IDLE
    for s, r in steps:
        e = t.feed(s, r)
        assert isinstance(e, FwEvent)
        if last in order and t.phase in order:
            assert order.index(t.phase) >= order.index(last)
        if last is Phase.SUCCEEDED:
            assert t.phase is Phase.SUCCEEDED
        last = t.phase
    assert t.can_execute == (t.state is S.DOWNLOADED and t.phase in (Phase.DOWNLOADED, Phase.FAILED))
    if t.phase is Phase.FAILED:
        assert t.failure_class in {"retryable", "fit", "final", "cancelled"}


@given(reports)
def test_no_success_without_update_evidence(steps: list[tuple[int | None, int | None]]) -> None:
    t = started()
    saw_updating = False
    for s, r in steps:
        t.feed(s, r)
        saw_updating = saw_updating or t.phase is Phase.UPDATING
        if t.phase is Phase.SUCCEEDED:
            assert saw_updating
