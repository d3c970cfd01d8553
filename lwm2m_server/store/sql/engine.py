"""What the repositories need from a backend engine: committed writes and read-your-writes reads.

Statements use ``?`` placeholders; an engine whose driver wants another style (asyncpg: ``$1``) rewrites them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Params = Sequence[Any] | Mapping[str, Any]


class Sql(Protocol):
    async def execute(self, sql: str, params: Params = ()) -> None: ...
    async def execute_together(self, statements: Sequence[tuple[str, Params]]) -> None:
        """Queue every statement at once, in order, so they share one commit (with whatever else is queued);
        returns once all are committed."""
        ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[dict[str, Any]]: ...
    async def flush(self) -> None: ...
