"""What an operator asks for (``RolloutSpec``) and what the rollout needs from compile + OTA (``Deployer``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lwm2m_server.rollouts.filters import FILTER_DOC, parse_filter
from lwm2m_server.rollouts.states import Thresholds
from lwm2m_server.rollouts.waves import parse_waves


class RolloutSpec(BaseModel):
    """A rollout request, validated the same way from REST, CLI and MQTT."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="zoo or uploaded model name, or package:<sha256>")
    filter: str = Field("", max_length=2000, description=FILTER_DOC)
    endpoints: list[str] | None = Field(None, max_length=100_000, description="explicit endpoints (AND the filter)")
    canaries: list[str] = Field(default_factory=list, max_length=1000)
    waves: str = Field("100%", max_length=400, description="10%,50%,100% | 5,20 | equal:4")
    success_threshold_pct: float = Field(100.0, ge=0, le=100)
    error_threshold_pct: float | None = Field(20.0, ge=0, le=100)
    error_threshold_count: int | None = Field(None, ge=1)
    max_concurrency: int = Field(50, ge=1, le=10_000)
    rate_per_minute: float = Field(0.0, ge=0)
    device_timeout_s: float | None = Field(None, gt=0)
    max_retries: int | None = Field(None, ge=0, le=20)
    method: Literal["push", "pull"] | None = None
    dynamic: bool = False
    allow_empty: bool = Field(False, description="create the rollout even if no device matches now (409 otherwise); "
                                                 "with dynamic, devices that register later join it")
    name: str = Field("", max_length=200)

    @field_validator("filter")
    @classmethod
    def _filter_parses(cls, v: str) -> str:
        parse_filter(v)  # FilterError is a ValueError: pydantic reports it as a validation error
        return v

    @field_validator("waves")
    @classmethod
    def _waves_parse(cls, v: str) -> str:
        parse_waves(v)
        return v

    def thresholds(self) -> Thresholds:
        return Thresholds(
            success_pct=self.success_threshold_pct,
            error_pct=self.error_threshold_pct,
            error_count=self.error_threshold_count,
        )


@dataclass(frozen=True)
class Build:
    """The package chosen for one compile class."""

    class_key: str
    variant: str
    package_sha: str
    size: int
    arena_bytes: int
    accuracy: float | None
    report: dict[str, Any] = field(default_factory=dict)
    payload_sha: str = ""  # sha256 of the .tflite: what the device reports in /32002/0/2 once installed


@dataclass(frozen=True)
class Incompatible:
    """Nothing fits this compile class (or its hardware is unknown); ``reason`` comes from the fit report."""

    class_key: str
    reason: str
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How one device's update ended: ``confirmed``, ``failed``, ``not_fitting`` or ``cancelled``."""

    status: Literal["confirmed", "failed", "not_fitting", "cancelled"]
    cause: str | None = None


PhaseCallback = Callable[[str], Awaitable[None]]
"""Called with ``delivering`` / ``installing`` as the OTA job moves on."""


class Deployer(Protocol):
    """The rollout engine's only view of devices, compiles and OTA jobs."""

    async def device_attributes(self, endpoint: str) -> dict[str, Any] | None:
        """Filterable attributes (registration + profile) of a registered device, or None."""

    async def registered_endpoints(self) -> list[str]: ...

    def class_of(self, attributes: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        """``(class_key, target dict)``; target None = hardware unknown."""

    async def build(self, model: str, class_key: str, target: dict[str, Any] | None) -> Build | Incompatible: ...

    async def installed_sha(self, endpoint: str) -> str | None:
        """sha256 of the model payload the device reports in /32002/0/2, if known."""

    async def start(self, endpoint: str, build: Build, *, method: str | None, timeout_s: float | None,
                    max_retries: int | None) -> str:
        """Start an OTA job; returns its id."""

    async def wait(self, job_id: str, on_phase: PhaseCallback) -> Outcome: ...

    async def cancel(self, job_id: str) -> None: ...
