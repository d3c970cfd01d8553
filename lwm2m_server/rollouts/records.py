"""The persisted shapes of a rollout and of one of its devices, as the repository returns them."""

from __future__ import annotations

from dataclasses import dataclass

from lwm2m_server.rollouts.model import RolloutSpec
from lwm2m_server.rollouts.states import DeviceState, RolloutState


@dataclass
class RolloutRow:
    id: str
    spec: RolloutSpec
    state: RolloutState
    current_wave: int
    wave_count: int
    reason: str | None
    created_at: float
    updated_at: float


@dataclass
class DeviceRow:
    endpoint: str
    wave: int
    class_key: str | None
    state: DeviceState
    cause: str | None
    job_id: str | None
    attempts: int
