"""``/api/tokens``: create (the secret is in this one response only), list and revoke API tokens (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from lwm2m_server.api.deps import get_actor
from lwm2m_server.api.errors import ERROR_RESPONSES, ApiError, ErrorBody, not_found
from lwm2m_server.auth.roles import Role
from lwm2m_server.auth.tokens import MAX_NAME, TokenError, TokenService
from lwm2m_server.store.audit import AuditLog

router = APIRouter(tags=["tokens"])


class TokenCreate(BaseModel):
    role: str = Field(description="viewer, operator or admin", examples=["operator"], max_length=16)
    name: str = Field(default="", max_length=MAX_NAME, description="A label for lists and the audit log")


class TokenView(BaseModel):
    id: str
    name: str
    role: str
    created_at: float
    revoked_at: float | None
    active: bool


class TokenCreated(TokenView):
    token: str = Field(description="The bearer token. Shown only here: the server keeps just its hash")


def _deps(request: Request) -> tuple[TokenService, AuditLog, str]:
    """The app's token service and audit log (set by ``create_app``) and who is calling."""
    return request.app.state.tokens, request.app.state.audit_log, get_actor(request)


@router.get("/api/tokens", response_model=list[TokenView], summary="Every token (never the secrets)",
            responses=ERROR_RESPONSES)
async def list_tokens(request: Request) -> list[dict[str, Any]]:
    tokens, _, _ = _deps(request)
    return [t.to_dict() for t in await tokens.list()]


@router.post("/api/tokens", status_code=201, response_model=TokenCreated, responses=ERROR_RESPONSES,
             summary="Create a token; the response carries the secret once")
async def create_token(request: Request, body: TokenCreate) -> dict[str, Any]:
    tokens, audit, actor = _deps(request)
    try:
        Role.parse(body.role)
        info, secret = await tokens.create(body.role, body.name)
    except (TokenError, ValueError) as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    await audit.record("auth.token.created", actor=actor, detail={"id": info.id, "name": info.name,
                                                                   "role": info.role})
    return {**info.to_dict(), "token": secret}


@router.delete("/api/tokens/{token_id}", response_model=TokenView,
               responses={**ERROR_RESPONSES, 409: {"model": ErrorBody, "description": "The last admin token"}},
               summary="Revoke a token (it stops working at once; the record stays)")
async def revoke_token(request: Request,
                       token_id: Annotated[str, Path(max_length=64, description="The token's id")]) -> dict[str, Any]:
    tokens, audit, actor = _deps(request)
    current = {t.id: t for t in await tokens.list()}
    if token_id not in current:
        raise not_found(f"no token with id {token_id!r}")
    admins = [t for t in current.values() if t.role == Role.ADMIN.label and t.revoked_at is None]
    if [t.id for t in admins] == [token_id]:
        raise ApiError(409, "conflict", "this is the last active admin token; create another admin token first")
    try:
        info = await tokens.revoke(token_id)
    except TokenError as exc:
        raise not_found(str(exc)) from None
    await audit.record("auth.token.revoked", actor=actor, detail={"id": info.id, "name": info.name,
                                                                   "role": info.role})
    return info.to_dict()
