"""``/api/credentials``: device DTLS PSK credentials (admin). Keys are never listed: a generated key is in the
response that created it (``key_hex``) and nowhere else; lists show an 8-hex-digit fingerprint."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from lwm2m_server.api.deps import get_actor
from lwm2m_server.api.errors import ERROR_RESPONSES, ApiError, not_found
from lwm2m_server.credentials import MAX_IMPORT_ROWS, CredentialService
from lwm2m_server.protocol.security import CredentialError, parse_key_hex

router = APIRouter(tags=["credentials"])
Endpoint = Annotated[str, Path(max_length=256, description="The device's endpoint name")]


class CredentialView(BaseModel):
    endpoint: str
    identity: str
    security_mode: str
    key_fingerprint: str = Field(description="First 8 hex digits of the key's SHA-256 (never the key)")
    created_at: float
    rotated_at: float | None
    revoked_at: float | None
    active: bool


class CredentialIssued(CredentialView):
    key_hex: str | None = Field(default=None, description="A generated key, shown only in this response")


class CredentialCreate(BaseModel):
    endpoint: str = Field(min_length=1, max_length=256)
    identity: str = Field(default="", max_length=64, description="PSK identity; default: the endpoint name")
    key_hex: str | None = Field(default=None, max_length=64, description="1..16 bytes in hex; omit to generate")


class KeyChange(BaseModel):
    key_hex: str | None = Field(default=None, max_length=64, description="omit to generate a new random key")


class CsvImport(BaseModel):
    csv: str = Field(max_length=MAX_IMPORT_ROWS * 200, description="endpoint,identity,key_hex lines")
    bootstrap: bool = Field(default=False, description="factory bootstrap PSKs (for /bs over coaps only)")


class Imported(BaseModel):
    imported: int


def _service(request: Request) -> CredentialService:
    service: CredentialService = request.app.state.server.credentials
    return service


def _key(text: str | None) -> bytes | None:
    try:
        return parse_key_hex(text) if text is not None else None
    except CredentialError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _issued(info: Any, key: bytes, generated: bool) -> dict[str, Any]:
    return {**info.to_dict(), "key_hex": key.hex() if generated else None}


@router.get("/api/credentials", response_model=list[CredentialView], responses=ERROR_RESPONSES,
            summary="Every device credential (fingerprints, never keys)")
async def list_credentials(request: Request) -> list[dict[str, Any]]:
    return [i.to_dict() for i in await _service(request).entries()]


@router.post("/api/credentials", status_code=201, response_model=CredentialIssued, responses=ERROR_RESPONSES,
             summary="Bind a PSK identity and key to an endpoint")
async def add_credential(request: Request, body: CredentialCreate) -> dict[str, Any]:
    key = _key(body.key_hex)
    try:
        info, secret = await _service(request).add(body.endpoint, body.identity or body.endpoint, key,
                                                   actor=get_actor(request))
    except CredentialError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return _issued(info, secret, key is None)


@router.post("/api/credentials/import", response_model=Imported, responses=ERROR_RESPONSES,
             summary="Import a factory batch (CSV endpoint,identity,key_hex; all rows or none)")
async def import_credentials(request: Request, body: CsvImport) -> dict[str, int]:
    try:
        return {"imported": await _service(request).import_csv(body.csv, actor=get_actor(request),
                                                               bootstrap=body.bootstrap)}
    except CredentialError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


@router.post("/api/credentials/{endpoint}/rotate", response_model=CredentialIssued, responses=ERROR_RESPONSES,
             summary="Replace the endpoint's key (the device needs the new one to connect again)")
async def rotate_credential(request: Request, endpoint: Endpoint, body: KeyChange | None = None) -> dict[str, Any]:
    key = _key(body.key_hex if body is not None else None)
    try:
        info, secret = await _service(request).rotate(endpoint, key, actor=get_actor(request))
    except KeyError:
        raise not_found(f"no active credential for {endpoint!r}") from None
    except CredentialError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return _issued(info, secret, key is None)


@router.delete("/api/credentials/{endpoint}", response_model=CredentialView, responses=ERROR_RESPONSES,
               summary="Revoke the endpoint's credential (new DTLS handshakes with it fail)")
async def revoke_credential(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    try:
        return (await _service(request).revoke(endpoint, actor=get_actor(request))).to_dict()
    except KeyError:
        raise not_found(f"no active credential for {endpoint!r}") from None
