"""Nodes sharing one PostgreSQL database must hold the same package signing key and credentials key: a node given
the first node's secrets dir starts and uses those files; a node with keys of its own refuses to start, saying
which setting to fix, and leaves the recorded fingerprints alone."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from tests.support.nodes import run_refused_node, start_node
from tests.support.postgres import drop_pg_database, make_pg_database


async def test_same_secrets_dir_starts_other_keys_are_refused(tmp_path: Path) -> None:
    dsn = await make_pg_database()
    secrets = tmp_path / "secrets"
    shared = {"TINYMLAAS_SERVER__SECRETS_DIR": str(secrets)}
    a = await start_node(tmp_path / "a", dsn, shared)
    b = await start_node(tmp_path / "b", dsn, shared)
    try:
        assert (secrets / "package_signing_key.pem").exists() and (secrets / "credentials.key").exists()
        for data_dir in (a.data_dir, b.data_dir):  # the keys live in the secrets dir only
            assert not (data_dir / "package_signing_key.pem").exists()
            assert not (data_dir / "credentials.key").exists()
        conn = await asyncpg.connect(dsn)
        try:
            before = {r["name"]: (r["fingerprint"], r["node_id"])
                      for r in await conn.fetch("SELECT * FROM key_fingerprints")}
        finally:
            await conn.close()
        assert set(before) == {"package_signing_key", "credentials_key"}
        assert {by for _, by in before.values()} <= {a.node_id, b.node_id}

        code, log = await run_refused_node(tmp_path / "c", dsn)  # default: its own data dir, its own new keys
        assert code != 0
        assert "package signing key" in log and "secrets_dir" in log and "--secrets-dir" in log, log
        own = tmp_path / "own-signing-key"  # the cluster's signing key but another credentials key
        own.mkdir()
        (own / "package_signing_key.pem").write_bytes((secrets / "package_signing_key.pem").read_bytes())
        code, log = await run_refused_node(tmp_path / "d", dsn, {"TINYMLAAS_SERVER__SECRETS_DIR": str(own)})
        assert code != 0 and "credentials key" in log, log
        conn = await asyncpg.connect(dsn)
        try:
            after = {r["name"]: (r["fingerprint"], r["node_id"])
                     for r in await conn.fetch("SELECT * FROM key_fingerprints")}
        finally:
            await conn.close()
        assert after == before
    finally:
        await a.kill()
        await b.kill()
        await drop_pg_database(dsn)
