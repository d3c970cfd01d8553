"""Bearer-token access control for the REST API: one guard per router, chosen by the table in ``app.py``.

An :class:`Access` says which role a request needs by HTTP method: ``GET``/``HEAD``/``OPTIONS`` need
``read``, every other method ``write``. ``None`` means no token is needed. A missing or unknown token is
401 (with ``WWW-Authenticate: Bearer``), a token whose role is too low is 403; both in the usual
``{"error", "message"}`` shape and both into the audit log through :class:`RefusalAudit` (aggregated).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lwm2m_server.api.errors import ApiError, ErrorBody
from lwm2m_server.auth.refusals import RefusalAudit
from lwm2m_server.auth.roles import Role
from lwm2m_server.auth.tokens import Principal, TokenService
from lwm2m_server.cluster.replay import FORWARDED_KEY

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Access:
    read: Role | None
    write: Role | None
    query_token: bool = False  # also accept ``?access_token=`` (SSE for EventSource clients)
    may_open: bool = False  # ``[api] metrics_open = true`` removes the guard

    def required(self, method: str) -> Role | None:
        return self.read if method.upper() in READ_METHODS else self.write


OPEN = Access(None, None)
BY_METHOD = Access(Role.VIEWER, Role.OPERATOR)  # reads: viewer; writes: operator
ADMIN = Access(Role.ADMIN, Role.ADMIN)
EVENTS = Access(Role.VIEWER, Role.OPERATOR, query_token=True)
METRICS = Access(Role.VIEWER, Role.VIEWER, may_open=True)

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No bearer token, or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "The token's role may not do this"},
}

bearer_scheme = HTTPBearer(auto_error=False, description="An API token (`tinymlaas token create`)")


@dataclass
class Authenticator:
    """What the guards need: the token service and the refusal audit (built once per app)."""

    tokens: TokenService
    refusals: RefusalAudit
    query_token: bool = True


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def guard(access: Access, auth: Authenticator) -> Callable[..., Awaitable[Principal]]:
    """The dependency that enforces ``access`` on every route of one router."""
    allow_query = access.query_token and auth.query_token

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        needed = access.required(request.method)
        forwarded = request.scope.get(FORWARDED_KEY)
        token = credentials.credentials if credentials is not None else None
        if token is None and allow_query:
            token = request.query_params.get("access_token")
        principal: Principal | None = None
        if forwarded is not None:  # replayed in-process for another node, which checked the token
            principal = _forwarded_principal(forwarded)
        elif token is None:
            await _refuse(auth, request, 401, "missing_token", "a bearer token is required (Authorization: Bearer ...)")
        else:
            principal = await auth.tokens.authenticate(token)
        if principal is None:
            await _refuse(auth, request, 401, "invalid_token", "the token is unknown or revoked")
        assert principal is not None
        if needed is not None and principal.role < needed:
            await _refuse(auth, request, 403, "forbidden",
                          f"role {principal.role.label} may not {request.method} here; needs {needed.label}")
        request.state.principal = principal
        return principal

    return check


def _forwarded_principal(data: Any) -> Principal | None:
    try:
        return Principal(str(data["token_id"]), str(data["name"]), Role(int(data["role"])))
    except (KeyError, TypeError, ValueError):
        return None


async def query_token_param(
    access_token: Annotated[str | None, Query(max_length=256, description="The API token, for EventSource "
                                              "clients that cannot send an Authorization header")] = None,
) -> None:
    """Declares ``access_token`` in the OpenAPI document of the routes that accept it (read by the guard); async
    so FastAPI does not run it in its thread pool."""


async def _refuse(auth: Authenticator, request: Request, status: int, reason: str, message: str) -> None:
    await auth.refusals.refused(status, reason, client_of(request), request.method, request.url.path)
    headers = {"WWW-Authenticate": 'Bearer realm="tinymlaas"'} if status == 401 else None
    raise ApiError(status, "unauthorized" if status == 401 else "forbidden", message, headers=headers)
