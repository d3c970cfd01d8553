"""Object 5 (Firmware Update) facts, defined once: resource paths, State and Update Result codes with their
failure classes and the retry rule, Delivery Method and Protocol Support numbers, the client's State machine.

The server's view of one device (``FirmwareUpdateTracker``) is :mod:`lwm2m_server.protocol.fwtracker`; the OTA
job drives it and the simulator obeys :func:`device_transition`. Neither redefines a number from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal, TypeVar

from lwm2m_server.protocol.paths import LwM2MPath

FW_STATE = LwM2MPath(5, 0, 3)
FW_RESULT = LwM2MPath(5, 0, 5)
FW_PACKAGE = LwM2MPath(5, 0, 0)
FW_PACKAGE_URI = LwM2MPath(5, 0, 1)
FW_UPDATE = LwM2MPath(5, 0, 2)
FW_PKG_NAME = LwM2MPath(5, 0, 6)
FW_PKG_VERSION = LwM2MPath(5, 0, 7)
FW_PROTOCOLS = LwM2MPath(5, 0, 8)
FW_DELIVERY = LwM2MPath(5, 0, 9)
FW_CANCEL = LwM2MPath(5, 0, 10)

PROTOCOL_SCHEMES: dict[int, str] = {0: "coap", 1: "coaps", 2: "http", 3: "https", 4: "coap+tcp", 5: "coaps+tcp"}
"""Firmware Update Protocol Support (/5/0/8) number -> Package URI scheme."""

FailureClass = Literal["retryable", "fit", "final", "cancelled", "deferred"]


class DeliveryMethod(IntEnum):
    """/5/0/9 Firmware Update Delivery Method."""

    PULL = 0
    PUSH = 1
    BOTH = 2

    @property
    def human(self) -> str:
        """``pull``, ``push`` or ``both`` (the simulator's profile key and the inventory's field)."""
        return self.name.lower()

    @property
    def methods(self) -> frozenset[Literal["push", "pull"]]:
        """The delivery methods this value allows."""
        if self is DeliveryMethod.PULL:
            return frozenset({"pull"})
        if self is DeliveryMethod.PUSH:
            return frozenset({"push"})
        return frozenset({"push", "pull"})

    @classmethod
    def named(cls, name: str) -> DeliveryMethod:
        """``"pull"`` -> PULL; ValueError for anything else than pull, push or both."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"delivery must be push, pull or both, got {name!r}") from None


def delivery_method(value: int | None) -> DeliveryMethod | None:
    """A reported /5/0/9 as the enum; None when absent or not a defined value."""
    return _member(DeliveryMethod, value)


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
    return _member(UpdateResult, value)


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


def firmware_state(value: int | None) -> FirmwareState | None:
    """A reported State as the enum; None when absent or not a defined code."""
    return _member(FirmwareState, value)


_E = TypeVar("_E", bound=IntEnum)


def _member(enum: type[_E], value: int | None) -> _E | None:
    """``value`` as a member of ``enum``; None when absent, a bool, or not a defined number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return enum(value)
    except ValueError:
        return None


# ---- what a failure means for the next attempt (DESIGN §4) ----------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryDecision:
    """After a failed attempt: retry in ``delay_s``, or stop; ``failure`` is the result's class."""

    retry: bool
    delay_s: float
    failure: FailureClass | None

    @property
    def exhausted(self) -> bool:
        """A retryable failure with no attempts left."""
        return not self.retry and self.failure == "retryable"


def retry_decision(result: int | None, attempt: int, max_retries: int, backoff_s: float) -> RetryDecision:
    """Retry results 4 and 5 (connection lost, integrity failure) with exponential back-off
    (``backoff * 2**(attempt-1)``) while ``attempt <= max_retries``. Never retry 2 or 3 with the same build (the
    device does not fit it: re-plan), nor 6-9 (final) or 10 (cancelled)."""
    code = update_result(result)
    cls = None if code is None else code.failure_class
    if cls == "retryable" and attempt <= max_retries:
        return RetryDecision(True, backoff_s * (2 ** (attempt - 1)), cls)
    return RetryDecision(False, 0.0, cls)
