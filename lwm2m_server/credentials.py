"""Per-device DTLS credentials: add, list, rotate, revoke, CSV import; the PSK lookup the coaps listener uses;
the rule that a device registering over DTLS uses the endpoint bound to its PSK identity.

Active credentials are cached in memory (loaded when the service opens, updated on every change) because the
DTLS handshake asks for a key synchronously. Keys are never returned by :meth:`entries` or logged: only a short
fingerprint (first 8 hex digits of the key's SHA-256). A key is shown once, when it is generated. Every change
and every refused registration goes to the audit log.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.security import (
    PSK_MAX_KEY_BYTES,
    CredentialError,
    check_identity,
    check_key,
    parse_key_hex,
)
from lwm2m_server.store.audit import AuditLog
from lwm2m_server.store.keybox import KeyBox
from lwm2m_server.store.repositories import CredentialRepository, CredentialRow

log = get_logger(__name__)

KEY_FILE = "credentials.key"
BOOTSTRAP_MODE = "bootstrap"
BOOTSTRAP_ROW_PREFIX = "bootstrap:"
"""A factory bootstrap PSK is its own credential row: ``security_mode`` "bootstrap", stored under the endpoint
column ``bootstrap:<endpoint>`` (so the same endpoint also holds its server credential). Its identity opens a DTLS
session for ``/bs`` only: the registration guard never accepts it (it binds no endpoint for Register)."""
MAX_IMPORT_ROWS = 100_000


def fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class CredentialInfo:
    endpoint: str
    identity: str
    security_mode: str
    key_fingerprint: str
    created_at: float
    rotated_at: float | None
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "identity": self.identity, "security_mode": self.security_mode,
                "key_fingerprint": self.key_fingerprint, "created_at": self.created_at,
                "rotated_at": self.rotated_at, "revoked_at": self.revoked_at, "active": self.revoked_at is None}


@dataclass(frozen=True)
class _Active:
    endpoint: str
    identity: str
    key: bytes


def parse_csv(text: str) -> list[tuple[str, str, bytes]]:
    """``endpoint,identity,key_hex`` lines (a header line naming those columns is skipped; ``#`` comments too).
    Raises :class:`CredentialError` naming the first bad line; duplicates within the file are errors."""
    out: list[tuple[str, str, bytes]] = []
    endpoints: set[str] = set()
    identities: set[str] = set()
    reader = csv.reader(io.StringIO(text, newline=""))
    n = 0
    while True:
        n += 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise CredentialError(f"line {n}: {exc}") from None
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if n == 1 and [c.lower() for c in cells] == ["endpoint", "identity", "key_hex"]:
            continue
        if len(cells) != 3:
            raise CredentialError(f"line {n}: expected endpoint,identity,key_hex; got {len(cells)} fields")
        ep, ident, key_hex = cells
        try:
            _check_endpoint(ep)
            check_identity(ident)
            key = parse_key_hex(key_hex)
        except CredentialError as exc:
            raise CredentialError(f"line {n}: {exc}") from None
        if ep in endpoints or ident in identities:
            raise CredentialError(f"line {n}: endpoint or identity repeated in the file")
        endpoints.add(ep)
        identities.add(ident)
        out.append((ep, ident, key))
        if len(out) > MAX_IMPORT_ROWS:
            raise CredentialError(f"more than {MAX_IMPORT_ROWS} credentials in one import")
    return out


def _check_endpoint(endpoint: str) -> None:
    if not endpoint or len(endpoint) > 256 or not endpoint.isprintable():
        raise CredentialError("endpoint must be 1..256 printable characters")


class CredentialService:
    def __init__(self, table: CredentialRepository, audit: AuditLog, data_dir: Path) -> None:
        self.table = table
        self.audit = audit
        self.box = KeyBox(data_dir / KEY_FILE)
        self._by_identity: dict[bytes, _Active] = {}
        self._by_endpoint: dict[str, _Active] = {}
        self._bootstrap: dict[bytes, _Active] = {}  # factory bootstrap PSKs by identity

    async def open(self) -> None:
        for row in await self.table.all():
            if row.revoked_at is None:
                active = _Active(row.endpoint, row.identity, self.box.open(row.key_enc))
                if row.security_mode == BOOTSTRAP_MODE:
                    self._bootstrap[row.identity.encode()] = _Active(
                        row.endpoint.removeprefix(BOOTSTRAP_ROW_PREFIX), row.identity, active.key)
                else:
                    self._cache(active)

    def _cache(self, active: _Active) -> None:
        old = self._by_endpoint.pop(active.endpoint, None)
        if old is not None:
            self._by_identity.pop(old.identity.encode(), None)
        self._by_endpoint[active.endpoint] = active
        self._by_identity[active.identity.encode()] = active

    def _uncache(self, endpoint: str) -> None:
        old = self._by_endpoint.pop(endpoint, None)
        if old is not None:
            self._by_identity.pop(old.identity.encode(), None)

    # -- what the transport and the registration interface ask ----------------------------------------------
    def psk_for(self, identity: bytes) -> bytes | None:
        active = self._by_identity.get(identity) or self._bootstrap.get(identity)
        return active.key if active is not None else None

    def has_bootstrap(self, endpoint: str) -> bool:
        return any(a.endpoint == endpoint for a in self._bootstrap.values())

    def bootstrap_endpoint_for(self, identity: str) -> str | None:
        """The endpoint a factory bootstrap identity belongs to (None: not a bootstrap identity)."""
        active = self._bootstrap.get(identity.encode())
        return active.endpoint if active is not None else None

    def endpoint_for(self, identity: str) -> str | None:
        active = self._by_identity.get(identity.encode())
        return active.endpoint if active is not None else None

    def is_secured(self, endpoint: str) -> bool:
        return endpoint in self._by_endpoint

    async def check_registration(self, endpoint: str, identity: str | None, peer: str) -> str | None:
        """None if ``endpoint`` may register with this DTLS ``identity`` (None = plain CoAP), else the reason
        (audited): a DTLS identity names exactly one endpoint, and an endpoint with a credential must use DTLS."""
        if identity is None:
            if not self.is_secured(endpoint):
                return None
            reason = "endpoint has a DTLS credential; plain CoAP refused"
        else:
            bound = self.endpoint_for(identity)
            if bound == endpoint:
                return None
            reason = "endpoint does not match the PSK identity's endpoint"
        await self.audit.record("device.register_refused", endpoint=endpoint, actor=f"coap:{peer}",
                                detail={"identity": identity, "reason": reason})
        log.warning("register_refused", endpoint=endpoint, identity=identity, reason=reason, peer=peer)
        return reason

    # -- management -----------------------------------------------------------------------------------------
    def _info(self, row: CredentialRow) -> CredentialInfo:
        return CredentialInfo(row.endpoint, row.identity, row.security_mode, fingerprint(self.box.open(row.key_enc)),
                              row.created_at, row.rotated_at, row.revoked_at)

    async def entries(self) -> list[CredentialInfo]:
        return [self._info(r) for r in await self.table.all()]

    async def get(self, endpoint: str) -> CredentialInfo | None:
        return next((i for i in await self.entries() if i.endpoint == endpoint), None)

    def _check_new(self, endpoint: str, identity: str, *, replace: bool) -> None:
        _check_endpoint(endpoint)
        check_identity(identity)
        if endpoint in self._by_endpoint and not replace:
            raise CredentialError(f"{endpoint} already has an active credential (rotate or revoke it)")
        holder = self._by_identity.get(identity.encode())
        if holder is not None and holder.endpoint != endpoint:
            raise CredentialError(f"PSK identity {identity!r} is already bound to another endpoint")
        if identity.encode() in self._bootstrap:
            raise CredentialError(f"PSK identity {identity!r} is a bootstrap identity")

    async def add_bootstrap(self, endpoint: str, identity: str, key: bytes, *, actor: str = "system") -> None:
        """Store (or replace) ``endpoint``'s factory bootstrap PSK; its identity may not be any other's."""
        _check_endpoint(endpoint)
        check_identity(identity)
        check_key(key)
        raw = identity.encode()
        holder = self._bootstrap.get(raw)
        if raw in self._by_identity or (holder is not None and holder.endpoint != endpoint):
            raise CredentialError(f"PSK identity {identity!r} is already in use")
        for ident, old in list(self._bootstrap.items()):
            if old.endpoint == endpoint:
                del self._bootstrap[ident]
        await self.table.put(CredentialRow(BOOTSTRAP_ROW_PREFIX + endpoint, identity, self.box.seal(key),
                                           BOOTSTRAP_MODE, time.time(), None, None))
        self._bootstrap[raw] = _Active(endpoint, identity, key)
        await self.audit.record("credentials.add_bootstrap", endpoint=endpoint, actor=actor,
                                detail={"identity": identity, "key_fingerprint": fingerprint(key)})

    async def add(self, endpoint: str, identity: str, key: bytes | None = None, *, actor: str = "system",
                  replace: bool = False) -> tuple[CredentialInfo, bytes]:
        """A new credential; ``key`` None = a fresh random 16-byte key. Returns the info and the key (show once)."""
        self._check_new(endpoint, identity, replace=replace)
        secret = check_key(key) if key is not None else secrets.token_bytes(PSK_MAX_KEY_BYTES)
        row = CredentialRow(endpoint, identity, self.box.seal(secret), "psk", time.time(), None, None)
        await self.table.put(row)
        self._cache(_Active(endpoint, identity, secret))
        await self.audit.record("credentials.add", endpoint=endpoint, actor=actor,
                                detail={"identity": identity, "key_fingerprint": fingerprint(secret)})
        return self._info(row), secret

    async def rotate(self, endpoint: str, key: bytes | None = None, *, actor: str = "system") -> tuple[
            CredentialInfo, bytes]:
        active = self._by_endpoint.get(endpoint)
        if active is None:
            raise KeyError(endpoint)
        secret = check_key(key) if key is not None else secrets.token_bytes(PSK_MAX_KEY_BYTES)
        await self.table.rotate(endpoint, self.box.seal(secret))
        self._cache(_Active(endpoint, active.identity, secret))
        await self.audit.record("credentials.rotate", endpoint=endpoint, actor=actor,
                                detail={"identity": active.identity, "key_fingerprint": fingerprint(secret)})
        info = await self.get(endpoint)
        assert info is not None
        return info, secret

    async def revoke(self, endpoint: str, *, actor: str = "system") -> CredentialInfo:
        """Revoke ``endpoint``'s credential; ``bootstrap:<ep>`` revokes that endpoint's factory bootstrap PSK."""
        if endpoint.startswith(BOOTSTRAP_ROW_PREFIX):
            return await self._revoke_bootstrap(endpoint, actor)
        active = self._by_endpoint.get(endpoint)
        if active is None:
            raise KeyError(endpoint)
        await self.table.revoke(endpoint)
        self._uncache(endpoint)
        await self.audit.record("credentials.revoke", endpoint=endpoint, actor=actor,
                                detail={"identity": active.identity})
        info = await self.get(endpoint)
        assert info is not None
        return info

    async def _revoke_bootstrap(self, row_key: str, actor: str) -> CredentialInfo:
        endpoint = row_key.removeprefix(BOOTSTRAP_ROW_PREFIX)
        found = [ident for ident, a in self._bootstrap.items() if a.endpoint == endpoint]
        if not found:
            raise KeyError(row_key)
        await self.table.revoke(row_key)
        for ident in found:
            del self._bootstrap[ident]
        await self.audit.record("credentials.revoke_bootstrap", endpoint=endpoint, actor=actor,
                                detail={"identity": found[0].decode()})
        info = await self.get(row_key)
        assert info is not None
        return info

    async def import_csv(self, text: str, *, actor: str = "system", bootstrap: bool = False) -> int:
        """All rows or none: any bad line, or an endpoint/identity already active, refuses the whole file.
        ``bootstrap``: the rows are factory bootstrap PSKs (see :data:`BOOTSTRAP_ROW_PREFIX`)."""
        rows = parse_csv(text)
        if bootstrap:
            for ep, ident, _key in rows:  # all or none: check every identity before storing any
                holder = self._bootstrap.get(ident.encode())
                if ident.encode() in self._by_identity or (holder is not None and holder.endpoint != ep):
                    raise CredentialError(f"PSK identity {ident!r} is already in use")
            for ep, ident, key in rows:
                await self.add_bootstrap(ep, ident, key, actor=actor)
            return len(rows)
        for ep, ident, _key in rows:
            self._check_new(ep, ident, replace=False)
        now = time.time()
        await self.table.put_many(
            [CredentialRow(ep, ident, self.box.seal(key), "psk", now, None, None) for ep, ident, key in rows])
        for ep, ident, key in rows:
            self._cache(_Active(ep, ident, key))
        await self.audit.record("credentials.import", actor=actor,
                                detail={"count": len(rows), "endpoints": [r[0] for r in rows[:50]]})
        return len(rows)
