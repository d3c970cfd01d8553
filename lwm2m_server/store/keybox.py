"""Credential keys at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key file in the data dir.
A hash would not do: the DTLS server must recover each PSK."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class KeyBox:
    """Encrypts PSK keys with a Fernet key kept in ``<data_dir>/credentials.key`` (created 0600 on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fernet: Fernet | None = None

    def _box(self) -> Fernet:
        if self._fernet is None:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(Fernet.generate_key())
            self._fernet = Fernet(self.path.read_bytes().strip())
        return self._fernet

    def seal(self, key: bytes) -> str:
        return self._box().encrypt(key).decode("ascii")

    def open(self, sealed: str) -> bytes:
        try:
            return self._box().decrypt(sealed.encode("ascii"))
        except InvalidToken as exc:
            raise ValueError(f"a credential cannot be decrypted with {self.path} (wrong key file?)") from exc
