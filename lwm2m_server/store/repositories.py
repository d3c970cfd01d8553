"""One small typed repository protocol per persisted concern; services depend on these, never on SQL.

The implementations live under :mod:`lwm2m_server.store.sqlite` (the default backend). A :class:`Store`
(see :mod:`lwm2m_server.store.base`) hands each repository out as an attribute (``store.queue``,
``store.ota_jobs``...), all sharing the store's connection and its batched writer, so the durability rules of
:mod:`lwm2m_server.store.base` hold for every repository: a write method returns once it is committed unless
it says it is write-behind, and a read sees every write queued before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lwm2m_server.ota.package_info import PackageInfo
    from lwm2m_server.ota.record import JobRecord
    from lwm2m_server.registration import Registration
    from lwm2m_server.rollouts.model import Build, Incompatible, RolloutSpec
    from lwm2m_server.rollouts.records import DeviceRow, RolloutRow
    from lwm2m_server.rollouts.states import DeviceState, RolloutState


# -- rows that are not a domain object elsewhere ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QueuedRow:
    """A server→device request waiting for a queue-mode device (``spec`` is the RequestSpec's JSON)."""

    seq: int
    endpoint: str
    spec: str
    payload: bytes
    timeout: float
    created_at: float


@dataclass(frozen=True)
class TokenRow:
    id: str
    name: str
    role: str
    token_hash: str
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class SentValue:
    path: str
    ts: float
    value: Any  # JSON-encodable


@dataclass(frozen=True)
class CredentialRow:
    """A device's DTLS credential; ``key_enc`` is the key sealed by the credential service, never the key."""

    endpoint: str
    identity: str
    key_enc: str
    security_mode: str
    created_at: float
    rotated_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class BootstrapRow:
    """An endpoint's bootstrap config (what :mod:`lwm2m_server.protocol.bootstrap` provisions on it)."""

    endpoint: str
    server_uri: str
    security_mode: str
    lifetime: int
    binding: str
    ssid: int
    delete_first: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A server node sharing the store: when it started, its last heartbeat, and what it serves (ports...)."""

    node_id: str
    started_at: float
    last_seen: float
    info: dict[str, Any]


# -- the protocols ------------------------------------------------------------------------------------------
class RegistrationRepository(Protocol):
    """Write-behind: ``save``/``delete`` queue the write (see :mod:`lwm2m_server.store.base`)."""

    async def save_registration(self, reg: Registration) -> None: ...
    async def delete_registration(self, endpoint: str) -> None: ...
    async def load_registrations(self) -> list[Registration]:
        """The registrations this node serves (on PostgreSQL: its own and unowned ones)."""
        ...

    async def fleet_registrations(self) -> list[Registration]:
        """Every node's registrations: what a rollout leader targets."""
        ...

    async def fleet_registration(self, endpoint: str) -> Registration | None: ...


class ProfileRepository(Protocol):
    async def save_profile(self, endpoint: str, profile: dict[str, Any]) -> None: ...
    async def load_profile(self, endpoint: str) -> dict[str, Any] | None: ...
    async def load_profiles(self) -> dict[str, dict[str, Any]]: ...


class EventRepository(Protocol):
    async def append_event(
        self, type: str, endpoint: str | None, data: dict[str, Any], ts: float | None = None
    ) -> None: ...
    def append_event_nowait(
        self, type: str, endpoint: str | None, data: dict[str, Any], ts: float | None = None, *,
        encoded: str | None = None,
    ) -> str | None:
        """Queue an event row; dropped silently once the store is closed (events emitted during shutdown).
        ``encoded``: ``data`` already as the compact JSON the store would write (``Event.shared_data_json``).
        Returns the row's data text (``json.dumps(data, separators=(",", ":"), default=...)``), None if dropped."""
        ...

    async def events(
        self, *, endpoint: str | None = None, type: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]: ...


class QueueRepository(Protocol):
    async def load(self) -> list[QueuedRow]:
        """Every queued request, oldest (lowest seq) first."""
        ...

    async def add(self, row: QueuedRow) -> None: ...
    async def remove(self, seq: int) -> None: ...
    async def remove_endpoint(self, endpoint: str) -> None: ...


class OtaJobRepository(Protocol):
    async def save(self, record: JobRecord, history: tuple[str, str, str] | None = None) -> None:
        """Upsert the job; ``history`` = (from_phase, to_phase, note) appends a history row in the same commit."""
        ...

    async def get(self, job_id: str) -> JobRecord | None: ...
    async def in_phases(self, phases: Iterable[str]) -> list[JobRecord]:
        """Jobs in any of ``phases``, oldest first."""
        ...

    async def for_endpoint(self, endpoint: str, limit: int = 20) -> list[JobRecord]:
        """The device's jobs, newest first."""
        ...

    async def history(self, job_id: str) -> list[dict[str, Any]]: ...
    async def adopt(self, job_id: str, from_node: str | None, to_node: str) -> bool:
        """Move the job to ``to_node`` if ``from_node`` still owns it (one atomic conditional update); True when
        ``to_node`` owns it afterwards. ``save`` by a node that no longer owns a job does not change it."""
        ...

    async def count_retried(self) -> int:
        """Jobs that needed more than one attempt."""
        ...


class PackageRepository(Protocol):
    async def add(self, info: PackageInfo, data: bytes | None = None) -> None:
        """Insert the metadata row (and the bytes, in the same commit, when given); the same sha256 again is a
        no-op (packages are immutable)."""
        ...

    async def put_data(self, sha256: str, data: bytes) -> None:
        """Store a package's bytes (a no-op when they are stored already)."""
        ...

    async def data(self, sha256: str) -> bytes | None:
        """The package's bytes, None when the store has none (a row from before bytes were stored)."""
        ...

    async def without_data(self) -> list[str]:
        """The sha256 of every package whose bytes the store lacks."""
        ...

    async def get(self, sha256: str) -> PackageInfo | None: ...
    async def all(self) -> list[PackageInfo]: ...


class RolloutTables(Protocol):
    """Rollouts, their per-device rows and their compile classes."""

    async def create(self, spec: RolloutSpec) -> RolloutRow: ...
    async def set_state(self, rollout_id: str, state: RolloutState, reason: str | None = None) -> None: ...
    async def set_wave(self, rollout_id: str, current: int, count: int | None = None) -> None: ...
    async def get(self, rollout_id: str) -> RolloutRow | None: ...
    async def list_rollouts(self, state: RolloutState | None = None) -> list[RolloutRow]: ...
    async def add_devices(self, rollout_id: str, waves: Iterable[tuple[int, str, str | None]]) -> None: ...
    async def set_device(
        self, rollout_id: str, endpoint: str, state: DeviceState, *, cause: str | None = None,
        job_id: str | None = None, attempt: bool = False,
    ) -> None: ...
    async def devices(
        self, rollout_id: str, *, wave: int | None = None, state: DeviceState | None = None,
        limit: int = -1, offset: int = 0,
    ) -> list[DeviceRow]: ...
    async def counts(self, rollout_id: str) -> list[dict[str, Any]]: ...
    async def class_members(self, rollout_id: str) -> dict[str, str]: ...
    async def save_class(
        self, rollout_id: str, target: dict[str, Any] | None, result: Build | Incompatible
    ) -> None: ...
    async def classes(self, rollout_id: str) -> list[dict[str, Any]]: ...


class AuditRepository(Protocol):
    async def record(self, action: str, *, rollout_id: str | None = None, endpoint: str | None = None,
                     actor: str = "system", detail: dict[str, Any] | None = None) -> None: ...
    async def entries(self, *, rollout_id: str | None = None, endpoint: str | None = None,
                      action_prefix: str | None = None, limit: int = 1000,
                      offset: int = 0) -> list[dict[str, Any]]: ...


class TokenRepository(Protocol):
    async def insert(self, row: TokenRow) -> None: ...
    async def all(self) -> list[TokenRow]: ...
    async def revoke(self, token_id: str) -> float: ...


class SendValueRepository(Protocol):
    async def add(self, endpoint: str, values: Sequence[SentValue], received_at: float) -> None: ...
    async def query(
        self, endpoint: str, *, path: str | None = None, since: float | None = None, until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]: ...
    async def prune(self) -> int:
        """Apply the store's retention now; returns the rows deleted."""
        ...

    @property
    def pruned(self) -> int: ...


class LeaseRepository(Protocol):
    """Named leases with an expiry, shared by every node on the store: at most one holder at a time; a holder
    that stops renewing loses the lease once it expires, and then any node may take it."""

    async def acquire(self, name: str, holder: str, ttl_s: float, *, now: float | None = None) -> bool:
        """Take (or renew, if ``holder`` has it) the lease for ``ttl_s``; False while another holder's is valid."""
        ...

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up (only if ``holder`` has it)."""
        ...

    async def leases(self) -> list[Lease]:
        """Every lease, expired ones included, by name."""
        ...


class NodeRepository(Protocol):
    """The nodes sharing the store (heartbeats) and which node owns each registration."""

    async def heartbeat(self, node: NodeRow) -> None:
        """Insert or refresh the node's row."""
        ...

    async def remove(self, node_id: str) -> None: ...
    async def nodes(self) -> list[NodeRow]: ...
    async def device_counts(self) -> dict[str | None, int]:
        """Registrations per owning node (None: rows written before nodes existed)."""
        ...

    async def sweep_expired(self, alive_since: float, now: float, grace_s: float = 0.0) -> int:
        """Delete expired registrations whose node has no heartbeat since ``alive_since`` (a node that died
        and never came back expires nobody's rows); returns how many."""
        ...

    async def owner(self, endpoint: str) -> str | None:
        """The node that holds ``endpoint``'s registration (None: unknown device or no owner recorded)."""
        ...


class Notifier(Protocol):
    """Messages between the nodes sharing a store (PostgreSQL LISTEN/NOTIFY); at-most-once, small payloads."""

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None: ...
    async def notify(self, channel: str, payload: str) -> None:
        """Send; ValueError when ``payload`` is over the channel's size limit."""
        ...

    async def close(self) -> None: ...


class FleetStats(Protocol):
    """The GROUP BY counts behind the Prometheus fleet series."""

    async def ota_phases(self) -> list[tuple[str, int]]: ...
    async def rollout_states(self) -> list[tuple[str, int]]: ...
    async def rollout_devices(self) -> list[tuple[str, str, int]]: ...


class CredentialRepository(Protocol):
    """Device credentials; revoked rows stay (``revoked_at``) as history until the endpoint is added again."""

    async def put(self, row: CredentialRow) -> None:
        """Insert or replace the endpoint's row (a new or re-added credential)."""
        ...
    async def put_many(self, rows: Sequence[CredentialRow]) -> None: ...
    async def rotate(self, endpoint: str, key_enc: str) -> float: ...
    async def revoke(self, endpoint: str) -> float: ...
    async def all(self) -> list[CredentialRow]: ...


class BootstrapRepository(Protocol):
    """Per-endpoint bootstrap configs."""

    async def put(self, row: BootstrapRow) -> None:
        """Insert or replace the endpoint's config."""
        ...
    async def get(self, endpoint: str) -> BootstrapRow | None: ...
    async def remove(self, endpoint: str) -> bool:
        """Delete the endpoint's config; False when there was none."""
        ...
    async def all(self) -> list[BootstrapRow]: ...


class KeyFingerprintRepository(Protocol):
    """One fingerprint per named secret (the package signing key, the credentials key) for every node sharing
    the store: the first node to record one sets it, so a node started with other keys can tell."""

    async def claim(self, name: str, fingerprint: str, node_id: str, now: float) -> tuple[str, str]:
        """Record ``fingerprint`` for ``name`` unless one is recorded; returns the recorded (fingerprint, node)."""
        ...
