"""Security facts for device credentials (LwM2M Security object, /0/x/2 "Security Mode"; DTLS PSK limits).

``SecurityMode`` values are the LwM2M 1.1 Security Mode resource's integers; the registration record and the
credential store use the lower-case names. PSK limits are what the DTLS stack (tinydtls, via DTLSSocket) accepts:
a 16-byte AES-128 key at most and an identity of at most 32 bytes.
"""

from __future__ import annotations

from enum import IntEnum

PSK_MAX_KEY_BYTES = 16
PSK_MAX_IDENTITY_BYTES = 32
PSK_CIPHER_SUITE = "TLS_PSK_WITH_AES_128_CCM_8"


class SecurityMode(IntEnum):
    PSK = 0
    RPK = 1
    CERTIFICATE = 2
    NOSEC = 3

    @property
    def label(self) -> str:
        return {0: "psk", 1: "rpk", 2: "certificate", 3: "none"}[int(self)]


class CredentialError(ValueError):
    """A PSK identity or key that cannot be used; the message says why."""


def check_identity(identity: str) -> bytes:
    raw = identity.encode("utf-8")
    if not identity or not identity.isprintable():
        raise CredentialError("PSK identity must be non-empty printable text")
    if len(raw) > PSK_MAX_IDENTITY_BYTES:
        raise CredentialError(f"PSK identity is {len(raw)} bytes; at most {PSK_MAX_IDENTITY_BYTES}")
    return raw


def check_key(key: bytes) -> bytes:
    if not 1 <= len(key) <= PSK_MAX_KEY_BYTES:
        raise CredentialError(f"PSK key must be 1..{PSK_MAX_KEY_BYTES} bytes, not {len(key)}")
    return key


def parse_key_hex(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise CredentialError("PSK key must be hex digits") from None
    return check_key(key)
