"""Rollout and per-device states, and the pure rules that move a rollout between waves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class DeviceState(StrEnum):
    PENDING = "pending"
    COMPILING = "compiling"
    DELIVERING = "delivering"
    INSTALLING = "installing"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    INCOMPATIBLE = "incompatible"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_DEVICE_STATES

    @property
    def in_flight(self) -> bool:
        return self in (DeviceState.COMPILING, DeviceState.DELIVERING, DeviceState.INSTALLING)


TERMINAL_DEVICE_STATES = frozenset(
    {DeviceState.CONFIRMED, DeviceState.FAILED, DeviceState.INCOMPATIBLE, DeviceState.SKIPPED, DeviceState.CANCELLED}
)


class RolloutState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (RolloutState.COMPLETED, RolloutState.CANCELLED, RolloutState.FAILED)


# Operator actions and the rollout states they are valid from.
ACTIONS: Mapping[str, frozenset[RolloutState]] = {
    "start": frozenset({RolloutState.CREATED}),
    "pause": frozenset({RolloutState.RUNNING}),
    "resume": frozenset({RolloutState.PAUSED}),
    "cancel": frozenset({RolloutState.CREATED, RolloutState.RUNNING, RolloutState.PAUSED}),
    "retry": frozenset({RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.COMPLETED, RolloutState.FAILED}),
}


class InvalidAction(ValueError):
    """An operator action that the rollout's current state does not allow (HTTP 409)."""


def check_action(action: str, state: RolloutState) -> None:
    allowed = ACTIONS.get(action)
    if allowed is None:
        raise InvalidAction(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if state not in allowed:
        raise InvalidAction(f"cannot {action} a rollout that is {state.value}")


@dataclass(frozen=True)
class Thresholds:
    """When to advance to the next wave, and when errors pause the rollout.

    ``success_pct``: share of a wave that must end confirmed or incompatible (not-fitting devices are
    not failures) before the next wave starts. ``error_pct`` / ``error_count``: failures (over the
    devices finished so far in the whole rollout) at which the rollout pauses for the operator.
    """

    success_pct: float = 100.0
    error_pct: float | None = 20.0
    error_count: int | None = None
    min_sample: int = 5  # error_pct is not applied before this many devices have finished


class Decision(StrEnum):
    WAIT = "wait"  # the wave still has work in flight or pending
    ADVANCE = "advance"  # the wave is done and met the success threshold
    COMPLETE = "complete"  # the last wave is done and met the success threshold
    PAUSE = "pause"  # the error threshold was crossed
    STALL = "stall"  # the wave is done but missed the success threshold: pause for the operator


def count_states(states: Iterable[DeviceState]) -> Counter[DeviceState]:
    return Counter(states)


def error_threshold_crossed(all_states: Counter[DeviceState], t: Thresholds) -> str | None:
    failed = all_states[DeviceState.FAILED]
    finished = sum(all_states[s] for s in (DeviceState.CONFIRMED, DeviceState.FAILED, DeviceState.INCOMPATIBLE))
    if t.error_count is not None and failed >= t.error_count:
        return f"{failed} devices failed (threshold {t.error_count})"
    if t.error_pct is not None and finished >= t.min_sample and failed and 100.0 * failed / finished >= t.error_pct:
        return f"{100.0 * failed / finished:.0f}% of finished devices failed (threshold {t.error_pct:g}%)"
    return None


def decide(wave: Counter[DeviceState], whole: Counter[DeviceState], t: Thresholds, *, last_wave: bool) -> Decision:
    """What to do next, given the state counts of the current wave and of the whole rollout."""
    if error_threshold_crossed(whole, t):
        return Decision.PAUSE
    size = sum(wave.values())
    if any(not s.terminal for s in wave.elements()):
        return Decision.WAIT
    good = wave[DeviceState.CONFIRMED] + wave[DeviceState.INCOMPATIBLE] + wave[DeviceState.SKIPPED]
    if size and 100.0 * good / size + 1e-9 < t.success_pct:
        return Decision.STALL
    return Decision.COMPLETE if last_wave else Decision.ADVANCE
