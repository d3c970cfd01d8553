from collections import Counter

import pytest

from lwm2m_server.rollouts.pacing import RateLimiter
from lwm2m_server.rollouts.states import (
    Decision,
    DeviceState,
    InvalidAction,
    RolloutState,
    Thresholds,
    check_action,
    decide,
    error_threshold_crossed,
)


def c(**kw: int) -> Counter[DeviceState]:
    return Counter({DeviceState(k): v for k, v in kw.items()})


def test_wait_advance_complete() -> None:
    t = Thresholds()
    assert decide(c(confirmed=3, delivering=1), c(confirmed=3, delivering=1), t, last_wave=False) is Decision.WAIT
    done = c(confirmed=3, incompatible=1)
    assert decide(done, done, t, last_wave=False) is Decision.ADVANCE
    assert decide(c(confirmed=4), c(confirmed=4), t, last_wave=True) is Decision.COMPLETE


def test_stall_below_success_threshold_but_lower_threshold_advances() -> None:
    wave = c(confirmed=9, failed=1)
    whole = c(confirmed=90, failed=1)
    assert decide(wave, whole, Thresholds(), last_wave=False) is Decision.STALL
    assert decide(wave, whole, Thresholds(success_pct=90), last_wave=False) is Decision.ADVANCE


def test_error_thresholds_pause() -> None:
    t = Thresholds(error_pct=20, min_sample=5)
    assert error_threshold_crossed(c(confirmed=3, failed=1), t) is None  # sample too small
    assert error_threshold_crossed(c(confirmed=4, failed=1), t) is not None
    assert decide(c(pending=5), c(confirmed=4, failed=1, pending=5), t, last_wave=False) is Decision.PAUSE
    assert error_threshold_crossed(c(confirmed=100, failed=2), Thresholds(error_pct=None, error_count=2))
    # incompatible devices are not failures
    assert error_threshold_crossed(c(confirmed=1, incompatible=50), t) is None


def test_actions() -> None:
    check_action("pause", RolloutState.RUNNING)
    with pytest.raises(InvalidAction, match="cannot resume"):
        check_action("resume", RolloutState.RUNNING)
    with pytest.raises(InvalidAction, match="unknown"):
        check_action("explode", RolloutState.RUNNING)
    assert DeviceState.CONFIRMED.terminal and not DeviceState.DELIVERING.terminal and DeviceState.DELIVERING.in_flight


def test_rate_limiter_with_fake_clock() -> None:
    now = [0.0]
    rl = RateLimiter(60, clock=lambda: now[0])  # one per second
    assert rl.take()
    assert not rl.take()
    assert rl.delay() == pytest.approx(1.0)
    now[0] = 0.5
    assert rl.delay() == pytest.approx(0.5)
    now[0] = 10.0  # long idle: bucket capped at burst=1
    assert rl.take() and not rl.take()
    unlimited = RateLimiter(0)
    assert all(unlimited.take() for _ in range(100)) and unlimited.delay() == 0.0
