"""API bearer tokens: random, shown once, stored only as a SHA-256 hash.

A token is ``tmla_`` + 32 random bytes (URL-safe base64). That is 256 bits of entropy, so a plain SHA-256
is the right at-rest form (a slow password hash only helps for guessable secrets); lookups are by hash,
so the time a check takes says nothing about how close a guess was. Active tokens are cached in memory
(loaded from the store when the service opens, updated on create/revoke), so checking a request never
waits on the store's write batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass

from lwm2m_server.auth.roles import Role
from lwm2m_server.store.repositories import TokenRepository, TokenRow

PREFIX = "tmla_"
MAX_NAME = 64
MAX_TOKEN_LEN = 128  # anything longer is refused before hashing


class TokenError(ValueError):
    """A create/revoke request that cannot be applied (unknown id, bad role or name)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's id, name and role."""

    token_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: str
    created_at: float
    revoked_at: float | None

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role, "created_at": self.created_at,
                "revoked_at": self.revoked_at, "active": self.revoked_at is None}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.role, row.created_at, row.revoked_at)


class TokenService:
    def __init__(self, table: TokenRepository) -> None:
        """``table``: the store's ``tokens`` repository."""
        self._table = table
        self._active: dict[str, Principal] = {}  # token hash -> principal
        self._opened = False
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        async with self._lock:
            if self._opened:
                return
            self._active = {r.token_hash: Principal(r.id, r.name, Role.parse(r.role))
                            for r in await self._table.all() if r.revoked_at is None}  # fmt: skip
            self._opened = True

    async def authenticate(self, token: str) -> Principal | None:
        """The principal for a presented token, or None (unknown, revoked, malformed)."""
        await self.open()
        if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LEN:
            return None
        return self._active.get(hash_token(token))

    def is_active(self, token_id: str) -> bool:
        """Whether the token is still valid (long-lived streams re-check this; revocation ends them)."""
        return any(p.token_id == token_id for p in self._active.values())

    async def create(self, role: Role | str, name: str = "") -> tuple[TokenInfo, str]:
        """A new token: its public record and the secret, which exists only in this return value."""
        await self.open()
        try:
            parsed = role if isinstance(role, Role) else Role.parse(role)
        except ValueError as exc:
            raise TokenError(str(exc)) from None
        token_id = secrets.token_hex(6)
        name = name.strip() or f"{parsed.label}-{token_id}"
        if len(name) > MAX_NAME or not name.isprintable():
            raise TokenError(f"token name must be printable and at most {MAX_NAME} characters")
        secret = PREFIX + secrets.token_urlsafe(32)
        row = TokenRow(token_id, name, parsed.label, hash_token(secret), time.time(), None)
        await self._table.insert(row)
        self._active[row.token_hash] = Principal(token_id, name, parsed)
        return _info(row), secret

    async def list(self) -> list[TokenInfo]:
        await self.open()
        return [_info(r) for r in await self._table.all()]

    async def revoke(self, token_id: str) -> TokenInfo:
        await self.open()
        rows = {r.id: r for r in await self._table.all()}
        row = rows.get(token_id)
        if row is None:
            raise TokenError(f"no token with id {token_id!r}")
        if row.revoked_at is None:
            revoked_at = await self._table.revoke(token_id)
            self._active.pop(row.token_hash, None)
            row = TokenRow(row.id, row.name, row.role, row.token_hash, row.created_at, revoked_at)
        return _info(row)

    async def ensure_initial_admin(self) -> str | None:
        """On a store that never had a token, create an admin token and return its secret (else None)."""
        await self.open()
        if await self._table.all():
            return None
        _, secret = await self.create(Role.ADMIN, "initial-admin")
        return secret
