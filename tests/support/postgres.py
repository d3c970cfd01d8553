"""A throw-away PostgreSQL database per test on the server at ``TINYMLAAS_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, trust auth); tests skip, saying why, when none is reachable."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

ADMIN_DSN = os.environ.get("TINYMLAAS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _admin() -> Any:
    import asyncpg

    try:
        return await asyncpg.connect(ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL server reachable at {ADMIN_DSN}: {exc} (bash .ci/run installs and starts one)")


async def make_pg_database() -> str:
    """A fresh database on the test server; returns its DSN (drop it with :func:`drop_pg_database`)."""
    admin = await _admin()
    name = f"tinymlaas_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


async def drop_pg_database(dsn: str) -> None:
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


