"""install(): every Update Result the device can report, with the real TFLite Micro runtime."""

from __future__ import annotations

import hashlib

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compilers.package import build_package
from simulator.install import bump_version, install, self_test
from tests.support.shared import KWS

pytestmark = pytest.mark.skipif(not KWS.exists(), reason="mlperf-tiny models not available")


@pytest.fixture(scope="module")
def signed() -> tuple[bytes, bytes, bytes]:
    payload = KWS.read_bytes()
    key = Ed25519PrivateKey.generate()
    package = build_package(payload=payload, signing_key=key, name="kws", version="7", variant="int8", arena_bytes=1)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return package, payload, public


def run(package: bytes, public: bytes | None, **kw: object) -> int:
    args: dict[str, object] = {
        "flash_free": 1 << 20,
        "ram_free_ml": 64 * 1024,
        "public_key": public,
        "accept_raw_firmware": False,
        "current_firmware": "1.0.0",
    }
    args.update(kw)
    return install(package, **args).result  # type: ignore[arg-type]


def test_success_fills_object_32002(signed: tuple[bytes, bytes, bytes]) -> None:
    package, payload, public = signed
    outcome = install(
        package, flash_free=1 << 20, ram_free_ml=64 * 1024, public_key=public, accept_raw_firmware=False,
        current_firmware="1.0.0",
    )  # fmt: skip
    assert outcome.result == 1, outcome.detail
    m = outcome.model
    assert (m[0], m[1], m[2], m[3], m[12]) == ("kws", "7", hashlib.sha256(payload).hexdigest(), "int8", "ok")
    assert m[4] == 1  # the manifest's arena figure is reported as is
    assert (m[5], m[7]) == ("1x49x10x1", "1x12")
    assert m[6].endswith(",83") and m[8] == "0.00390625,-128"  # scale,zero_point from the flatbuffer
    assert m[9] == 1 and m[10] > 0 and len(m[11].split(",")) == 12
    again = self_test(payload, 64 * 1024, previous_count=1)
    assert again[9] == 2 and again[12] == "ok" and again[11] == m[11]  # deterministic self-test


def test_failures_map_to_update_results(signed: tuple[bytes, bytes, bytes]) -> None:
    package, _, public = signed
    assert run(package, public, flash_free=len(package) - 1) == 2
    assert run(package, public, ram_free_ml=4096) == 3  # TFLM cannot allocate the arena
    assert run(package, bytes(32)) == 5  # wrong key
    tampered = bytearray(package)
    tampered[-100] ^= 1  # inside the .tflite payload: hash mismatch
    assert run(bytes(tampered), public) == 5
    assert run(package, None) == 1  # no key configured: hash and size still checked
    assert run(bytes(tampered), None) == 5
    assert run(cbor2.dumps({"not": "a package"}), public) == 5
    assert run(b"\x7fELF raw image", public) == 6  # not a package and raw images not accepted
    bogus = build_package(
        payload=b"definitely not a flatbuffer" * 10, signing_key=Ed25519PrivateKey.generate(), name="x",
        version="1", variant="int8", arena_bytes=0,
    )  # fmt: skip
    assert run(bogus, None) == 8  # verified, but the runtime cannot load it


def test_raw_firmware_bumps_the_version() -> None:
    outcome = install(
        b"\x7fELF...", flash_free=1024, ram_free_ml=0, public_key=None, accept_raw_firmware=True,
        current_firmware="2.0.9",
    )  # fmt: skip
    assert (outcome.result, outcome.firmware_version) == (1, "2.0.10")


@pytest.mark.parametrize(("old", "new"), [("1.0.0", "1.0.1"), ("7", "8"), ("v2-beta", "v2-beta.1"), ("", "1")])
def test_bump_version(old: str, new: str) -> None:
    assert bump_version(old) == new


@pytest.mark.slow
def test_vela_build_installs_only_on_an_npu_device_with_room() -> None:
    """The host TFLM has no Ethos-U kernel: the NPU install is checked by the exact arena planner instead."""
    from compilers.arena import plan_arena
    from compilers.backends.vela import run_vela

    vela_model, _ = run_vela(KWS.read_bytes(), "ethos-u55-128")
    key = Ed25519PrivateKey.generate()
    package = build_package(payload=vela_model, signing_key=key, name="kws", version="1", variant="int8-vela",
                            arena_bytes=1)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    need = plan_arena(vela_model).total_bytes
    ok = install(package, flash_free=1 << 20, ram_free_ml=need, public_key=public, accept_raw_firmware=False,
                 current_firmware="1", accelerator="ethos-u55-128")
    assert ok.result == 1, ok.detail
    assert ok.model[12] == "ok" and ok.model[3] == "int8-vela" and ok.model[5] == "1x49x10x1"
    assert run(package, public, ram_free_ml=need - 16, accelerator="ethos-u55-128") == 3  # arena too small
    assert run(package, public, accelerator="none") == 6  # an NPU build on a CPU-only device
    again = self_test(vela_model, need, previous_count=1)
    assert again[12] == "ok"


def test_tiny_arena_is_refused_before_the_runtime(signed: tuple[bytes, bytes, bytes]) -> None:
    package, _, public = signed
    assert run(package, public, ram_free_ml=200) == 3  # the host TFLM would crash below ~450 B
