"""API tokens for tests: every shared fixture that serves the REST API hands its clients an admin token.

``authorized(server)`` creates the app's token service and an admin token, and exports the token as
``TINYMLAAS_TOKEN`` while the context is open, so in-process and subprocess CLI calls (which read it like a
user's shell would) are authorized without each test passing ``--token``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from lwm2m_server.auth.roles import Role
from lwm2m_server.auth.tokens import TokenService

TOKEN_ENV = "TINYMLAAS_TOKEN"


@dataclass
class Auth:
    tokens: TokenService
    admin_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.admin_token)

    async def token(self, role: Role | str, name: str = "") -> str:
        _, secret = await self.tokens.create(role, name)
        return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def exported(token: str) -> Iterator[None]:
    """``TINYMLAAS_TOKEN=token`` for the duration (restored afterwards)."""
    previous = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = token
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = previous


@contextlib.asynccontextmanager
async def authorized(store: Any, tokens: TokenService | None = None) -> AsyncIterator[Auth]:
    """An admin token on ``tokens`` (default: a new service over ``store``), exported as ``TINYMLAAS_TOKEN``."""
    service = tokens if tokens is not None else TokenService(store.tokens)
    _, secret = await service.create(Role.ADMIN, "test-admin")
    with exported(secret):
        yield Auth(service, secret)


@contextlib.asynccontextmanager
async def authorized_api(server: Any, host: str = "127.0.0.1", port: int = 0, **app_kwargs: Any) -> AsyncIterator[Any]:
    """``ApiRunner(create_app(server))`` started, with ``runner.auth`` (an :class:`Auth`) and the token exported."""
    from lwm2m_server.api import ApiRunner, create_app

    async with authorized(server.store) as auth:
        runner = ApiRunner(create_app(server, tokens=auth.tokens, **app_kwargs), host, port)
        runner.auth = auth  # type: ignore[attr-defined]
        async with runner:
            yield runner


def token_env() -> dict[str, str]:
    """``{"TINYMLAAS_TOKEN": ...}`` as exported by the running fixture, for subprocesses given a minimal env."""
    token = os.environ.get(TOKEN_ENV)
    return {TOKEN_ENV: token} if token else {}
