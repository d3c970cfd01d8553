"""Credential parsing (hypothesis: any text is parsed or refused with CredentialError, never another error), the
DTLS ClientHello sniff, and the store: keys encrypted at rest, reloaded after a restart, revocation sticks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_server.coap.dtls import is_client_hello
from lwm2m_server.credentials import CredentialService, parse_csv
from lwm2m_server.protocol.security import CredentialError, parse_key_hex
from lwm2m_server.store.sqlite import SqliteStore

KEY = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_csv_text_parses_or_is_a_credential_error(text: str) -> None:
    try:
        rows = parse_csv(text)
    except CredentialError as exc:
        assert str(exc)
        return
    for endpoint, identity, key in rows:
        assert endpoint and identity and 1 <= len(key) <= 16


@given(st.binary(max_size=64))
def test_client_hello_sniff_never_raises(data: bytes) -> None:
    assert is_client_hello(data) in (True, False)


def test_csv_rules() -> None:
    assert parse_csv(f"endpoint,identity,key_hex\n# batch 7\n\na,id-a,{KEY.hex()}\n") == [("a", "id-a", KEY)]
    for bad, where in [(f"a,id-a,{KEY.hex()}\na,id-b,{KEY.hex()}\n", "line 2"), ("a,id-a\n", "line 1"),
                       ("a,id-a,00" + "00" * 16 + "\n", "line 1"), ("a,,0011\n", "line 1")]:  # fmt: skip
        with pytest.raises(CredentialError, match=where):
            parse_csv(bad)
    with pytest.raises(CredentialError):
        parse_key_hex("0g")


async def test_keys_encrypted_at_rest_and_reloaded(tmp_path: Path) -> None:
    async def service() -> tuple[SqliteStore, CredentialService]:
        store = SqliteStore(tmp_path / "s.sqlite3")
        await store.open()
        creds = CredentialService(store.credentials, store.audit, tmp_path)
        await creds.open()
        return store, creds

    store, creds = await service()
    await creds.add("ep-1", "id-1", KEY)
    await creds.add("ep-2", "id-2", KEY)
    await creds.revoke("ep-2")
    with pytest.raises(CredentialError, match="already bound"):
        await creds.add("ep-3", "id-1")
    await store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("s.sqlite3*"))
    assert KEY not in raw and KEY.hex().encode() not in raw  # only the Fernet token is stored
    assert (tmp_path / "credentials.key").stat().st_mode & 0o077 == 0

    store, again = await service()
    assert again.psk_for(b"id-1") == KEY and again.endpoint_for("id-1") == "ep-1"
    assert again.psk_for(b"id-2") is None  # revoked stays revoked
    assert [i.endpoint for i in await again.entries()] == ["ep-1", "ep-2"]
    assert await again.check_registration("ep-1", "id-1", "peer") is None
    assert await again.check_registration("ep-9", "id-1", "peer") is not None
    assert await again.check_registration("ep-1", None, "peer") is not None  # secured: no plain CoAP
    await asyncio.sleep(0)
    await store.close()
