"""The persistence boundary: registrations, device inventory, the event log, and one typed repository per concern.

Durability contract (what callers may rely on):

* ``save_registration``/``delete_registration``/``save_profile``/``append_event`` are *write-behind*: they queue
  the write and return at once; the batch commits within ``batch_window_ms`` (or sooner when ``batch_max`` writes
  are queued). The CoAP Register reply therefore precedes the commit: a crash can lose the last few milliseconds
  of registrations. That is safe for LwM2M because registrations are soft state: a device whose registration was
  lost gets 4.04 on its next Update and registers again.
* Every other repository write returns only once it is committed (its error, if any, is raised to the
  caller); concurrent callers share one transaction.
* ``flush`` waits until every write queued before the call is committed.
* Every read first waits for the writes queued before it (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from lwm2m_server.store.repositories import (
    AuditRepository,
    BootstrapRepository,
    CredentialRepository,
    EventRepository,
    FleetStats,
    KeyFingerprintRepository,
    LeaseRepository,
    NodeRepository,
    OtaJobRepository,
    PackageRepository,
    ProfileRepository,
    QueueRepository,
    RegistrationRepository,
    RolloutTables,
    SendValueRepository,
    TokenRepository,
)

Params = Sequence[Any] | Mapping[str, Any]


@runtime_checkable
class Store(RegistrationRepository, ProfileRepository, EventRepository, Protocol):
    """A backend: registrations, profiles and events directly, every other concern as a typed repository."""

    @property
    def queue(self) -> QueueRepository: ...
    @property
    def ota_jobs(self) -> OtaJobRepository: ...
    @property
    def packages(self) -> PackageRepository: ...
    @property
    def rollouts(self) -> RolloutTables: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...
    @property
    def send_values(self) -> SendValueRepository: ...
    @property
    def stats(self) -> FleetStats: ...
    @property
    def leases(self) -> LeaseRepository: ...
    @property
    def credentials(self) -> CredentialRepository: ...
    @property
    def nodes(self) -> NodeRepository: ...
    @property
    def bootstrap(self) -> BootstrapRepository: ...
    @property
    def key_fingerprints(self) -> KeyFingerprintRepository: ...

    async def open(self) -> None:
        """Connect and apply the pending schema migrations."""
        ...

    async def close(self) -> None: ...
    async def flush(self) -> None: ...
