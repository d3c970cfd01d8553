"""TokenService over a real SQLite file: hash at rest only, roles, revoke, first-start admin, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_server.auth.roles import Role
from lwm2m_server.auth.tokens import PREFIX, TokenError, TokenService, hash_token
from lwm2m_server.store.sqlite import SqliteStore


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "t.sqlite3")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_only_the_hash_is_stored_and_a_restart_still_knows_it(store: SqliteStore, tmp_path: Path) -> None:
    service = TokenService(store.tokens)
    info, secret = await service.create(Role.OPERATOR, "ci")
    assert secret.startswith(PREFIX) and len(secret) >= 40
    await store.flush()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("t.sqlite3"))
    assert secret.encode() not in raw and secret[len(PREFIX):].encode() not in raw
    assert hash_token(secret).encode() in raw
    again = TokenService(store.tokens)  # a restarted server: loads the active hashes from the store
    principal = await again.authenticate(secret)
    assert principal is not None and principal.role is Role.OPERATOR and principal.name == "ci"
    assert principal.token_id == info.id


async def test_revoke_roles_and_unknown_tokens(store: SqliteStore) -> None:
    service = TokenService(store.tokens)
    _, viewer = await service.create("viewer")
    info, admin = await service.create("admin", "boss")
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert (await service.authenticate(viewer)).role is Role.VIEWER  # type: ignore[union-attr]
    revoked = await service.revoke(info.id)
    assert revoked.revoked_at is not None
    assert await service.authenticate(admin) is None
    assert await TokenService(store.tokens).authenticate(admin) is None  # revoked survives a restart
    assert (await service.revoke(info.id)).revoked_at == revoked.revoked_at  # idempotent
    with pytest.raises(TokenError, match="no token"):
        await service.revoke("nope")
    with pytest.raises(TokenError, match="unknown role"):
        await service.create("root")
    with pytest.raises(TokenError, match="printable"):
        await service.create("viewer", "x" * 65)
    assert [t.name for t in await service.list()][1] == "boss"


async def test_initial_admin_only_on_a_store_that_never_had_tokens(store: SqliteStore) -> None:
    first = await TokenService(store.tokens).ensure_initial_admin()
    assert first is not None
    principal = await TokenService(store.tokens).authenticate(first)
    assert principal is not None and principal.role is Role.ADMIN
    assert await TokenService(store.tokens).ensure_initial_admin() is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_presented_tokens_are_refused_not_crashing(text: str) -> None:
    import asyncio
    import tempfile

    async def check() -> None:
        with tempfile.TemporaryDirectory() as d:
            s = SqliteStore(Path(d) / "h.sqlite3")
            await s.open()
            try:
                assert await TokenService(s.tokens).authenticate(text) is None
            finally:
                await s.close()

    asyncio.run(check())
