"""The contract fixture: every repository test runs on both backends. PostgreSQL tests make and drop their own
database on the server at ``TINYMLAAS_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
trust auth) and skip, saying why, when no server is reachable there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.store.base import Store
from tests.support.postgres import drop_pg_database, make_pg_database

StoreFactory = Callable[..., Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgres"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """``await make_store(**kwargs)``: an opened store of the parameter's backend; calling it again opens another
    store on the *same* data (a restarted server). All are closed, and the PostgreSQL database dropped, after."""
    opened: list[Store] = []
    dsn = await make_pg_database() if request.param == "postgres" else ""

    async def factory(**kwargs: Any) -> Store:
        store: Store
        if request.param == "postgres":
            from lwm2m_server.store.postgres import PostgresStore

            store = PostgresStore(dsn, **kwargs)
        else:
            from lwm2m_server.store.sqlite import SqliteStore

            store = SqliteStore(tmp_path / "contract.sqlite3", **kwargs)
        await store.open()
        opened.append(store)
        return store

    try:
        yield factory
    finally:
        for store in reversed(opened):
            await store.close()
        if dsn:
            await drop_pg_database(dsn)
