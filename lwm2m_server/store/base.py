"""The persistence boundary: registrations, device inventory, the event log, and generic SQL for other services.

Durability contract (what callers may rely on):

* ``save_registration``/``delete_registration``/``save_profile``/``append_event`` are *write-behind*: they queue
  the write and return at once; the batch commits within ``batch_window_ms`` (or sooner when ``batch_max`` writes
  are queued). The CoAP Register reply therefore precedes the commit: a crash can lose the last few milliseconds
  of registrations. That is safe for LwM2M because registrations are soft state: a device whose registration was
  lost gets 4.04 on its next Update and registers again.
* ``execute`` returns only once its write is committed (its error, if any, is raised to the caller); concurrent
  callers share one transaction.
* ``flush`` waits until every write queued before the call is committed.
* Every read first waits for the writes queued before it (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from lwm2m_server.registration import Registration

Params = Sequence[Any] | Mapping[str, Any]


@runtime_checkable
class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def save_registration(self, reg: Registration) -> None: ...
    async def delete_registration(self, endpoint: str) -> None: ...
    async def load_registrations(self) -> list[Registration]: ...

    async def save_profile(self, endpoint: str, profile: dict[str, Any]) -> None: ...
    async def load_profile(self, endpoint: str) -> dict[str, Any] | None: ...
    async def load_profiles(self) -> dict[str, dict[str, Any]]: ...

    async def append_event(
        self, type: str, endpoint: str | None, data: dict[str, Any], ts: float | None = None
    ) -> None: ...
    async def events(
        self,
        *,
        endpoint: str | None = None,
        type: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]: ...

    async def ensure_schema(self, ddl: str) -> None: ...
    async def execute(self, sql: str, params: Params = ()) -> None: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]: ...
    async def flush(self) -> None: ...
