"""Immutable, content-addressed packages: a metadata row and the bytes in the store (the ``packages``
repository), so every node sharing the store serves and pushes every package; ``<data_dir>/packages/<sha256>``
is this node's file cache of the bytes (and, for rows written before the store kept bytes, the only copy: those
are copied into the store on start).

Two kinds: a *model* package (the signed CBOR envelope from :mod:`compilers.package`; its manifest names the
.tflite payload's sha256, which is what the device reports in /32002/0/2) and a plain *firmware* image (opaque
bytes delivered unchanged, confirmed by Update Result 1). The sha256 of the package bytes is its identity, its
``/fw/<sha>`` URI and its ETag, so a package can never change under a device that is downloading it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lwm2m_server.logging import get_logger
from lwm2m_server.ota.package_info import Kind, PackageInfo
from lwm2m_server.store.repositories import PackageRepository

log = get_logger(__name__)

__all__ = ["Kind", "PackageError", "PackageInfo", "PackageStore", "describe_model_package"]

class PackageError(ValueError):
    """Bytes that are not a valid package of the requested kind (bad signature, not CBOR, empty...)."""


def describe_model_package(data: bytes, public_key: bytes | None = None) -> dict[str, Any]:
    """Manifest fields of a signed model package (verified with ``public_key`` when given)."""
    import compilers.package as pkg

    try:
        if public_key is not None:
            manifest, payload = pkg.verify(data, public_key)
        else:
            manifest, payload = pkg.parse(data)
    except Exception as exc:
        raise PackageError(f"not a valid model package: {exc}") from exc
    fields = manifest if isinstance(manifest, dict) else asdict(manifest)
    payload_sha = str(fields.get("sha256") or hashlib.sha256(payload).hexdigest())
    if hashlib.sha256(payload).hexdigest() != payload_sha:
        raise PackageError("model package payload does not match its manifest sha256")
    return {
        "name": str(fields.get("name", "")),
        "version": str(fields.get("version", "")),
        "payload_sha256": payload_sha,
        "variant": str(fields.get("variant", "")),
        "arena_bytes": int(fields.get("arena_bytes", 0) or 0),
    }


class PackageStore:
    """Add, look up and read packages; keeps recently served blobs in memory for the /fw resource."""

    def __init__(self, data_dir: Path, store: PackageRepository, *, cache_bytes: int = 64 * 1024 * 1024) -> None:
        self.dir = Path(data_dir) / "packages"
        self._store = store
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached = 0
        self._info: dict[str, PackageInfo] = {}

    async def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        await self._backfill()

    async def _backfill(self) -> None:
        """Copy into the store the bytes of packages it only has as files here (data dirs from before)."""
        for sha in await self._store.without_data():
            blob = await asyncio.to_thread(self._read_file, sha)
            if blob is None:
                continue  # another node's file (it backfills its own) or lost: nothing to copy from here
            await self._store.put_data(sha, blob)
            log.info("ota.package_backfilled", sha256=sha, size=len(blob))

    async def add(
        self,
        data: bytes,
        kind: Kind,
        *,
        name: str = "",
        version: str = "",
        public_key: bytes | None = None,
    ) -> PackageInfo:
        """Store ``data`` (idempotent: the same bytes give the same sha and row)."""
        if not data:
            raise PackageError("empty package")
        sha = hashlib.sha256(data).hexdigest()
        existing = await self.get(sha)
        if existing is not None:
            return existing
        if kind == "model":
            meta = describe_model_package(data, public_key)
        elif kind == "firmware":
            meta = {"name": name, "version": version, "payload_sha256": sha, "variant": "", "arena_bytes": 0}
        else:
            raise PackageError(f"unknown package kind {kind!r}")
        info = PackageInfo(sha256=sha, kind=kind, size=len(data), created_at=time.time(), **meta)
        await asyncio.to_thread(self._write_file, sha, data)
        await self._store.add(info, data)
        self._info[sha] = info
        self._remember(sha, data)
        log.info("ota.package_added", sha256=sha, kind=kind, size=len(data), name=info.name)
        return info

    def _write_file(self, sha: str, data: bytes, *, replace: bool = False) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / sha
        if final.exists() and not replace:
            return
        tmp = self.dir / f".{sha}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"  # unique: concurrent adds of one sha
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)

    async def get(self, sha: str) -> PackageInfo | None:
        if sha in self._info:
            return self._info[sha]
        info = await self._store.get(sha)
        if info is None:
            return None
        self._info[sha] = info
        return info

    async def list(self) -> list[PackageInfo]:
        return await self._store.all()

    async def read(self, sha: str) -> bytes | None:
        """The package bytes, or None if unknown; this is the /fw resource's lookup (hot path: memory first)."""
        blob = self._cache.get(sha)
        if blob is not None:
            self._cache.move_to_end(sha)
            return blob
        if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
            return None
        blob = await asyncio.to_thread(self._read_file, sha)
        if blob is None:  # not cached on this node (added through another one) or damaged: the store's copy
            blob = await self._store.data(sha)
            if blob is None or hashlib.sha256(blob).hexdigest() != sha:
                return None
            await asyncio.to_thread(self._write_file, sha, blob, replace=True)
        self._remember(sha, blob)
        return blob

    def _read_file(self, sha: str) -> bytes | None:
        try:
            blob = (self.dir / sha).read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(blob).hexdigest() != sha:  # a damaged file must never be served as this sha
            log.error("ota.package_corrupt_on_disk", sha256=sha)
            return None
        return blob

    def _remember(self, sha: str, blob: bytes) -> None:
        if len(blob) > self._cache_bytes:
            return
        self._cache[sha] = blob
        self._cached += len(blob)
        while self._cached > self._cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached -= len(old)
