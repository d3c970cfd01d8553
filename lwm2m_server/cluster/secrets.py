"""Every node sharing a store must sign packages with the same key (devices verify with its public half) and open
credentials with the same ``credentials.key``. The operator gives every node the same ``[server] secrets_dir``
files; on start each node compares their fingerprints with the ones the first node recorded in the store and
refuses to start on a mismatch, instead of signing packages devices reject or failing every DTLS handshake."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

from lwm2m_server.logging import get_logger
from lwm2m_server.store.keybox import KeyBox
from lwm2m_server.store.repositories import KeyFingerprintRepository

log = get_logger(__name__)

SIGNING_KEY = "package_signing_key"
CREDENTIALS_KEY = "credentials_key"


class SecretsMismatch(RuntimeError):
    """This node's secrets are not the ones the cluster's first node recorded."""


def signing_key_fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(b"tinymlaas package signing key\0" + public_key).hexdigest()


async def check_shared_secrets(repo: KeyFingerprintRepository, node_id: str, secrets_dir: Path,
                               public_key: bytes, keybox: KeyBox) -> None:
    """Record this node's fingerprints, or compare them with the recorded ones (SecretsMismatch if they differ)."""
    mine = {SIGNING_KEY: signing_key_fingerprint(public_key),
            CREDENTIALS_KEY: await asyncio.to_thread(keybox.fingerprint)}
    for name, fingerprint in mine.items():
        recorded, by = await repo.claim(name, fingerprint, node_id, time.time())
        if recorded != fingerprint:
            log.error("cluster.secrets_mismatch", secret=name, secrets_dir=str(secrets_dir), recorded_by=by)
            raise SecretsMismatch(
                f"this node's {name.replace('_', ' ')} (in {secrets_dir}) is not the one the cluster uses "
                f"(recorded by node {by}, fingerprint {recorded[:16]}..., this node has {fingerprint[:16]}...): "
                "give every node the same files via [server] secrets_dir (--secrets-dir, "
                "TINYMLAAS_SERVER__SECRETS_DIR)")
