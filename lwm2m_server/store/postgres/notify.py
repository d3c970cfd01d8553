"""PostgreSQL ``LISTEN``/``NOTIFY`` as a message channel between server nodes (asyncpg ``add_listener``): one
dedicated connection per node, which listens on the node's channels and sends with ``pg_notify``. A payload
must stay under PostgreSQL's 8000-byte limit (:data:`MAX_PAYLOAD`); delivery is at-most-once, to the nodes
listening at that moment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

MAX_PAYLOAD = 7900


class PgNotifier:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn)
        return self._conn

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        async with self._lock:
            conn = await self._connection()
            await conn.add_listener(channel, lambda _c, _pid, _ch, payload: callback(payload))

    async def notify(self, channel: str, payload: str) -> None:
        if len(payload.encode()) > MAX_PAYLOAD:
            raise ValueError(f"notification payload over {MAX_PAYLOAD} bytes")
        async with self._lock:
            conn = await self._connection()
            await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
