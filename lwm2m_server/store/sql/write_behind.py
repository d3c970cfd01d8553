"""The write-behind queue both backends' batch writers share: writes accumulate in the *open* batch and one
writer task commits it when ``batch_max`` writes are queued or ``batch_window_s`` after the first, whichever
comes first. Registration and profile writes are coalesced per endpoint (only a batch's last state is written);
committed writes (:meth:`WriteBehindQueue.put_sql`) share the batch's transaction and their futures resolve after
the commit. A backend supplies only :meth:`WriteBehindQueue._commit`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.timers import wait_event

log = get_logger(__name__)


@dataclass
class WriteBatch:
    done: asyncio.Future[None]
    regs: dict[str, tuple[Any, ...] | None] = field(default_factory=dict)
    profiles: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    generic: list[tuple[str, Any, asyncio.Future[None]]] = field(default_factory=list)  # (sql, params, answered)
    size: int = 0


class WriteBehindQueue:
    backend = "sql"
    task_name = "store-writer"

    def __init__(self, batch_max: int = 512, batch_window_s: float = 0.005) -> None:
        self.batch_max = max(1, batch_max)
        self.window = max(0.0, batch_window_s)
        self._open = self._new_batch()
        self._inflight: asyncio.Future[None] | None = None
        self._kick = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches_committed = 0
        self.writes_committed = 0

    @staticmethod
    def _new_batch() -> WriteBatch:
        return WriteBatch(asyncio.get_running_loop().create_future())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.task_name)

    async def close(self) -> None:
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    # -- queueing ---------------------------------------------------------------------------------------------
    def _added(self) -> None:
        self._open.size += 1
        self._kick.set()
        if self._open.size >= self.batch_max:
            self._full.set()

    def put_registration(self, endpoint: str, row: tuple[Any, ...] | None) -> None:
        self._open.regs[endpoint] = row
        self._added()

    def put_profile(self, endpoint: str, row: tuple[Any, ...]) -> None:
        self._open.profiles[endpoint] = row
        self._added()

    def put_event(self, row: tuple[Any, ...]) -> None:
        self._open.events.append(row)
        self._added()

    def put_sql(self, sql: str, params: Any) -> asyncio.Future[None]:
        """``sql`` in the backend's own placeholder style; the future resolves once committed (or with the
        statement's error)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._open.generic.append((sql, params, fut))
        self._added()
        return fut

    @property
    def pending(self) -> int:
        return self._open.size

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (or failed and reported)."""
        if self._open.size:
            await asyncio.shield(self._open.done)
        elif self._inflight is not None:
            await asyncio.shield(self._inflight)

    # -- the writer task --------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._kick.wait()
            if self._open.size < self.batch_max and self.window > 0:
                await wait_event(self._full, self.window)
            batch, self._open = self._open, self._new_batch()
            self._kick.clear()
            self._full.clear()
            self._inflight = batch.done
            try:
                if batch.size:
                    await self._commit(batch)
                    self.batches_committed += 1
                    self.writes_committed += batch.size
            except Exception:
                log.exception("store_batch_failed", backend=self.backend, writes=batch.size)
            finally:
                self._inflight = None
                if not batch.done.done():
                    batch.done.set_result(None)

    async def _commit(self, batch: WriteBatch) -> None:
        """Commit ``batch`` in one transaction and answer its ``generic`` futures; when one of those statements
        fails, retry them each in its own transaction so one bad statement fails only its own caller."""
        raise NotImplementedError
