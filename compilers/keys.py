"""The server's Ed25519 package-signing key: created on first start in the data dir, then reloaded.

Stored as unencrypted PKCS#8 PEM with file mode 0600 (the data dir is the trust boundary).
Creation is atomic (write a temp file, then hard-link it into place), so two processes starting
at once end up with the same key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = "package_signing_key.pem"


class KeyFileError(ValueError):
    """The key file exists but is not an Ed25519 private key."""


def key_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / KEY_FILE


def _load(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: expected an Ed25519 key, found {type(key).__name__}")
    return key


def load_or_create_signing_key(data_dir: Path | str) -> Ed25519PrivateKey:
    """Return the signing key in ``data_dir``, creating it (mode 0600) if there is none."""
    path = key_path(data_dir)
    if path.exists():
        return _load(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd, tmp = tempfile.mkstemp(prefix=".key-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # fails if another process won the race: use theirs
        except FileExistsError:
            return _load(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return key


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key (what simulated devices are given)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(data: bytes | Ed25519PublicKey) -> Ed25519PublicKey:
    """Accept a raw 32-byte key, a PEM public key, or a key object."""
    if isinstance(data, Ed25519PublicKey):
        return data
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(bytes(data))
    try:
        key = serialization.load_pem_public_key(bytes(data))
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"not an Ed25519 public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"expected an Ed25519 public key, found {type(key).__name__}")
    return key
