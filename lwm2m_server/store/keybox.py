"""Credential keys at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key file in the secrets dir
(``[server] secrets_dir``, by default the data dir). A hash would not do: the DTLS server must recover each PSK."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class KeyBox:
    """Encrypts PSK keys with a Fernet key kept in ``<secrets_dir>/credentials.key`` (created 0600 on first use;
    two nodes sharing the dir and starting at once end up with the same key)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fernet: Fernet | None = None
        self._key = b""

    def _box(self) -> Fernet:
        if self._fernet is None:
            if not self.path.exists():
                self._create()
            self._key = self.path.read_bytes().strip()
            self._fernet = Fernet(self._key)
        return self._fernet

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=self.path.parent)  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race: its key is the key
                os.link(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def fingerprint(self) -> str:
        """A one-way digest of the key (creating it if there is none), to compare keys across nodes."""
        self._box()
        return hashlib.sha256(b"tinymlaas credentials.key\0" + self._key).hexdigest()

    def seal(self, key: bytes) -> str:
        return self._box().encrypt(key).decode("ascii")

    def open(self, sealed: str) -> bytes:
        try:
            return self._box().decrypt(sealed.encode("ascii"))
        except InvalidToken as exc:
            raise ValueError(f"a credential cannot be decrypted with {self.path} (wrong key file?)") from exc
