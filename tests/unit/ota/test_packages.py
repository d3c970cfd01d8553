"""Content-addressed package store over a real SQLite file in tmp_path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from lwm2m_server.ota.packages import PackageError, PackageInfo, PackageStore
from lwm2m_server.store.sqlite import SqliteStore


async def test_firmware_image_is_content_addressed_and_idempotent(tmp_path: Path, store: SqliteStore) -> None:
    packages = PackageStore(tmp_path, store.packages)
    await packages.open()
    image = os.urandom(4096)
    info = await packages.add(image, "firmware", name="zephyr-app", version="2.1.0")
    sha = hashlib.sha256(image).hexdigest()
    assert info.sha256 == sha == info.payload_sha256
    assert info.etag == bytes.fromhex(sha[:16])
    assert (tmp_path / "packages" / sha).read_bytes() == image
    again = await packages.add(image, "firmware", name="other")
    assert again == info  # immutable: the first metadata wins
    assert await packages.read(sha) == image


async def test_metadata_and_bytes_survive_a_restart(tmp_path: Path, store: SqliteStore) -> None:
    image = b"\x7fELF" + os.urandom(1000)
    first = PackageStore(tmp_path, store.packages)
    await first.open()
    info = await first.add(image, "firmware", version="9")
    fresh = PackageStore(tmp_path, store.packages)  # empty memory cache
    await fresh.open()
    assert await fresh.get(info.sha256) == info
    assert await fresh.read(info.sha256) == image
    assert [p.sha256 for p in await fresh.list()] == [info.sha256]


async def test_damaged_file_is_not_served(tmp_path: Path, store: SqliteStore) -> None:
    packages = PackageStore(tmp_path, store.packages)
    await packages.open()
    image = os.urandom(100)
    info = await packages.add(image, "firmware")
    (tmp_path / "packages" / info.sha256).write_bytes(b"tampered")
    fresh = PackageStore(tmp_path, store.packages)
    assert await fresh.read(info.sha256) == image  # the store's copy, never the damaged file
    assert (tmp_path / "packages" / info.sha256).read_bytes() == image  # and the cache file is repaired
    (tmp_path / "packages" / info.sha256).write_bytes(b"tampered")
    await store.execute("DELETE FROM ota_package_blobs")  # no good copy anywhere: nothing is served
    assert await PackageStore(tmp_path, store.packages).read(info.sha256) is None


async def test_a_package_added_on_one_node_is_served_by_another(tmp_path: Path, store: SqliteStore) -> None:
    node_a = PackageStore(tmp_path / "a", store.packages)  # two data dirs, one shared store
    node_b = PackageStore(tmp_path / "b", store.packages)
    await node_a.open()
    await node_b.open()
    image = os.urandom(3000)
    info = await node_a.add(image, "firmware", name="shared")
    assert not (tmp_path / "b" / "packages" / info.sha256).exists()
    assert await node_b.get(info.sha256) == info
    assert await node_b.read(info.sha256) == image
    assert (tmp_path / "b" / "packages" / info.sha256).read_bytes() == image  # b's file cache is filled


async def test_files_only_packages_are_backfilled_into_the_store(tmp_path: Path, store: SqliteStore) -> None:
    image = os.urandom(500)  # a data dir from before the store kept bytes: the row, and the file only
    sha = hashlib.sha256(image).hexdigest()
    await store.packages.add(PackageInfo(sha, "firmware", len(image), "old", "1", sha, created_at=1.0))
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / sha).write_bytes(image)
    assert await store.packages.without_data() == [sha]
    packages = PackageStore(tmp_path, store.packages)
    await packages.open()
    assert await store.packages.without_data() == []
    assert await store.packages.data(sha) == image
    assert await PackageStore(tmp_path / "other-node", store.packages).read(sha) == image


async def test_unknown_and_invalid(tmp_path: Path, store: SqliteStore) -> None:
    packages = PackageStore(tmp_path, store.packages)
    await packages.open()
    assert await packages.read("0" * 64) is None
    assert await packages.read("../../etc/passwd") is None
    assert await packages.get("0" * 64) is None
    with pytest.raises(PackageError):
        await packages.add(b"", "firmware")
    with pytest.raises(PackageError):
        await packages.add(b"not cbor at all", "model")


async def test_model_package_verified_and_described(tmp_path: Path, store: SqliteStore) -> None:
    from tests.integration.ota.models import KWS, signed_kws_package

    if not KWS.exists():
        pytest.skip("MLPerf Tiny models not available")
    blob, public_key = signed_kws_package(tmp_path / "keys")
    packages = PackageStore(tmp_path, store.packages)
    await packages.open()
    info = await packages.add(blob, "model", public_key=public_key)
    assert info.sha256 == hashlib.sha256(blob).hexdigest()
    assert info.payload_sha256 == hashlib.sha256(KWS.read_bytes()).hexdigest() != info.sha256
    assert (info.name, info.variant) == ("kws", "int8") and info.arena_bytes > 0
    other, _other_key = signed_kws_package(tmp_path / "other-keys", version="2")
    with pytest.raises(PackageError, match="not a valid model package"):
        await packages.add(other, "model", public_key=public_key)  # signed by someone else
    tampered = bytearray(blob)
    tampered[-10] ^= 0xFF
    with pytest.raises(PackageError):
        await packages.add(bytes(tampered), "model", public_key=public_key)
