"""``/api/credentials`` and ``tinymlaas credentials ...`` against a live server: keys shown only when generated,
never listed; bad input is a 400 JSON error; every change is audited; a CSV batch is all-or-nothing."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from lwm2m_server.credentials import CredentialService
from tests.integration.api.conftest import Stack, running_stack
from tests.support.auth import token_env

pytestmark = pytest.mark.asyncio(loop_scope="module")
CLI = [sys.executable, "-c", "from lwm2m_server.cli import main; main()"]
KEY = "00112233445566778899aabbccddeeff"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(Path(tmp_path_factory.mktemp("creds"))) as s:
        yield s


async def cli(stack: Stack, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, "--server", stack.url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **token_env()})  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_add_list_rotate_revoke(stack: Stack) -> None:
    http = stack.http
    r = await http.post("/api/credentials", json={"endpoint": "c-1", "identity": "id-c-1", "key_hex": KEY})
    assert r.status_code == 201, r.text
    assert r.json()["key_hex"] is None and r.json()["security_mode"] == "psk"  # given keys are never echoed
    generated = await http.post("/api/credentials", json={"endpoint": "c-2"})
    key2 = generated.json()["key_hex"]
    assert generated.status_code == 201 and len(bytes.fromhex(key2)) == 16
    assert generated.json()["identity"] == "c-2"
    listed = (await http.get("/api/credentials")).json()
    assert [c["endpoint"] for c in listed] == ["c-1", "c-2"]
    assert KEY not in json.dumps(listed) and key2 not in json.dumps(listed)
    assert stack.server.credentials.psk_for(b"id-c-1") == bytes.fromhex(KEY)

    rotated = await http.post("/api/credentials/c-1/rotate", json={})
    assert rotated.status_code == 200 and rotated.json()["rotated_at"] is not None
    assert stack.server.credentials.psk_for(b"id-c-1") == bytes.fromhex(rotated.json()["key_hex"])
    revoked = await http.delete("/api/credentials/c-1")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert stack.server.credentials.psk_for(b"id-c-1") is None
    assert (await http.delete("/api/credentials/c-1")).status_code == 404
    actions = [e["action"] for e in await stack.server.audit.entries(action_prefix="credentials.")]
    assert actions[:4] == ["credentials.add", "credentials.add", "credentials.rotate", "credentials.revoke"]
    assert KEY not in json.dumps(await stack.server.audit.entries())  # fingerprints only in the audit log


@pytest.mark.parametrize("body", [
    {"endpoint": "b-1", "key_hex": "zz"},
    {"endpoint": "b-1", "key_hex": "00" * 17},
    {"endpoint": "b-1", "identity": "x" * 33},
    {"endpoint": "c-2"},  # already has an active credential
])  # fmt: skip
async def test_bad_credentials_are_400(stack: Stack, body: dict[str, str]) -> None:
    r = await stack.http.post("/api/credentials", json=body)
    assert r.status_code == 400 and r.json()["error"] == "bad_request", r.text


async def test_identity_is_unique(stack: Stack) -> None:
    await stack.http.post("/api/credentials", json={"endpoint": "u-1", "identity": "shared", "key_hex": KEY})
    r = await stack.http.post("/api/credentials", json={"endpoint": "u-2", "identity": "shared", "key_hex": KEY})
    assert r.status_code == 400 and "already bound" in r.json()["message"]


async def test_cli_import_is_all_or_nothing_and_list(stack: Stack, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"endpoint,identity,key_hex\nf-1,id-f-1,{KEY}\nf-2,id-f-2,nothex\n")
    code, _out, err = await cli(stack, "credentials", "import", str(bad))
    assert code != 0 and "line 3" in err
    assert stack.server.credentials.psk_for(b"id-f-1") is None  # nothing of the bad batch went in
    good = tmp_path / "good.csv"
    good.write_text("".join(f"f-{i},id-f-{i},{KEY}\n" for i in range(20)))
    code, out, err = await cli(stack, "credentials", "import", str(good))
    assert code == 0 and "imported 20" in out, err
    assert stack.server.credentials.endpoint_for("id-f-7") == "f-7"
    code, out, _ = await cli(stack, "credentials", "list")
    assert code == 0 and "id-f-19" in out and KEY not in out
    code, out, _ = await cli(stack, "credentials", "add", "cli-1", "--identity", "id-cli-1")
    assert code == 0 and "shown only now" in out
    code, out, _ = await cli(stack, "credentials", "revoke", "cli-1")
    assert code == 0 and "revoked" in out
    code, _out, err = await cli(stack, "credentials", "rotate", "nobody")
    assert code != 0 and ("404" in err or "no active credential" in err)


async def test_bootstrap_psk_import_list_revoke(stack: Stack, tmp_path: Path) -> None:
    """Factory bootstrap PSKs: imported with --bootstrap, listed as ``bootstrap:<ep>``, usable for the DTLS
    handshake but bound to no endpoint for Register, revocable; an identity already in use is refused (400)."""
    csv = tmp_path / "factory-bs.csv"
    csv.write_text(f"fb-1,fbid-1,{KEY}\nfb-2,fbid-2,{KEY}\n")
    rc, out, err = await cli(stack, "credentials", "import", "--bootstrap", str(csv))
    assert rc == 0 and "imported 2" in out, err
    creds = stack.server.credentials
    assert creds.psk_for(b"fbid-1") == bytes.fromhex(KEY) and creds.endpoint_for("fbid-1") is None
    assert creds.bootstrap_endpoint_for("fbid-2") == "fb-2" and not creds.is_secured("fb-1")
    reloaded = CredentialService(stack.server.store.credentials, stack.server.audit,
                                 stack.server.settings.server.data_dir)
    await reloaded.open()  # a restart finds the bootstrap PSKs again, still apart from server credentials
    assert reloaded.bootstrap_endpoint_for("fbid-1") == "fb-1" and reloaded.endpoint_for("fbid-1") is None
    listed = {c["endpoint"]: c for c in (await stack.http.get("/api/credentials")).json()}
    assert listed["bootstrap:fb-1"]["security_mode"] == "bootstrap" and KEY not in json.dumps(listed)
    clash = await stack.http.post("/api/credentials/import",
                                  json={"csv": f"fb-3,fbid-1,{KEY}\n", "bootstrap": True})
    assert clash.status_code == 400 and "already in use" in clash.json()["message"]
    assert creds.bootstrap_endpoint_for("fbid-1") == "fb-1"
    revoked = await stack.http.delete("/api/credentials/bootstrap:fb-1")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert creds.psk_for(b"fbid-1") is None and creds.bootstrap_endpoint_for("fbid-1") is None
    assert (await stack.http.delete("/api/credentials/bootstrap:fb-1")).status_code == 404
    actions = [e["action"] for e in await stack.server.audit.entries(action_prefix="credentials.")]
    assert "credentials.add_bootstrap" in actions and "credentials.revoke_bootstrap" in actions
