"""Installing a delivered package on the simulated device: checks, then the real TFLite Micro runtime.

Synchronous and CPU-bound on purpose: the device runs it in an executor thread. The outcome is an
LwM2M Update Result (1 success, 2 no flash, 3 out of RAM, 5 integrity, 6 unsupported package, 8 failed)
plus the values for /32002/0 (model) or the new firmware version (plain firmware image).
"""

from __future__ import annotations

import hashlib
import importlib
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

import numpy as np

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.fwupdate import UpdateResult

log = get_logger(__name__)

MAX_OUTPUT_CHARS = 120


@dataclass(frozen=True)
class InstallOutcome:
    result: UpdateResult
    detail: str = ""
    model: dict[int, Any] = field(default_factory=dict)
    """/32002/0 resource values when a model was installed."""
    firmware_version: str | None = None
    """New /3/0/3 when a plain firmware image was installed."""
    package_name: str = ""
    package_version: str = ""


def _manifest_dict(manifest: Any) -> dict[str, Any]:
    if isinstance(manifest, dict):
        return manifest
    if is_dataclass(manifest) and not isinstance(manifest, type):
        return asdict(manifest)
    return dict(vars(manifest))


def _is_envelope(data: bytes) -> bool:
    """A model package is a CBOR map (major type 5); anything else is treated as a raw image."""
    return bool(data) and (data[0] >> 5) == 5


def bump_version(version: str) -> str:
    """``1.0.3`` -> ``1.0.4``; a version without a trailing number gets ``.1``."""
    if not version:
        return "1"
    head, _, last = version.rpartition(".")
    if last.isdigit():
        return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)
    return f"{version}.1"


def _fmt_shape(shape: Any) -> str:
    return "x".join(str(int(d)) for d in shape)


def _fmt_quant(details: dict[str, Any]) -> str:
    q = details.get("quantization_parameters") or {}
    scales, zeros = q.get("scales"), q.get("zero_points")
    if scales is None or len(scales) == 0:
        return ""
    return f"{float(scales[0]):.8g},{int(zeros[0]) if zeros is not None and len(zeros) else 0}"


def self_test_input(details: dict[str, Any]) -> np.ndarray:
    """The known input: real value 0.0 everywhere (the zero point for quantized inputs)."""
    dtype = details["dtype"]
    q = details.get("quantization_parameters") or {}
    zeros = q.get("zero_points")
    fill = int(zeros[0]) if zeros is not None and len(zeros) and np.issubdtype(dtype, np.integer) else 0
    return np.full(tuple(int(d) for d in details["shape"]), fill, dtype=dtype)


def run_model(tflite: bytes, arena_bytes: int) -> tuple[dict[int, Any], str]:
    """Load ``tflite`` into TFLM with ``arena_bytes`` and run one self-test inference.

    Returns (32002 values for shapes, quantization, count, latency, output) or raises MemoryError when the
    arena is too small and RuntimeError for any other runtime failure.
    """
    from tflite_micro.python.tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(tflite, arena_size=arena_bytes)
    except RuntimeError as exc:
        if "allocate" in str(exc).lower():
            raise MemoryError(f"tensor arena of {arena_bytes} bytes too small: {exc}") from exc
        raise
    inp, out = interpreter.get_input_details(0), interpreter.get_output_details(0)
    interpreter.set_input(self_test_input(inp), 0)
    started = time.perf_counter()
    interpreter.invoke()
    latency_us = int((time.perf_counter() - started) * 1e6)
    output = np.asarray(interpreter.get_output(0)).ravel()
    text = ",".join(str(v.item()) for v in output)[:MAX_OUTPUT_CHARS]
    values = {
        5: _fmt_shape(inp["shape"]),
        6: _fmt_quant(inp),
        7: _fmt_shape(out["shape"]),
        8: _fmt_quant(out),
        9: 1,
        10: latency_us,
        11: text,
    }
    return values, text


NPU_OP = "ethos-u"
MIN_HOST_ARENA = 1024
"""Below this the host TFLM build crashes (SIGSEGV) instead of failing cleanly: refuse it first, as a device would."""


def run_npu_model(tflite: bytes, arena_bytes: int) -> dict[int, Any]:
    """An Ethos-U (Vela) build: the host has no NPU and TFLM on the host has no ``ethos-u`` kernel, so the
    install is checked with the exact arena planner (it matches TFLM to the byte) and the self-test is not run."""
    from compilers.arena import plan_arena
    from compilers.tflite_info import inspect_tflite

    plan = plan_arena(tflite)
    if plan.total_bytes > arena_bytes:
        raise MemoryError(f"tensor arena needs {plan.total_bytes} bytes, {arena_bytes} available")
    info = inspect_tflite(tflite)

    def quant(spec: Any) -> str:
        return f"{spec.scale:.8g},{spec.zero_point}" if spec.scale else ""

    return {5: _fmt_shape(info.input_spec.shape), 6: quant(info.input_spec), 7: _fmt_shape(info.output_spec.shape),
            8: quant(info.output_spec), 9: 0, 10: 0, 11: "npu build: self-test not run on the host"}


def install(
    package: bytes,
    *,
    flash_free: int,
    ram_free_ml: int,
    public_key: bytes | None,
    accept_raw_firmware: bool,
    current_firmware: str,
    accelerator: str = "none",
) -> InstallOutcome:
    """Check and install ``package``; never raises (every failure is an Update Result)."""
    if len(package) > flash_free:
        return InstallOutcome(
            UpdateResult.NOT_ENOUGH_FLASH, f"package of {len(package)} bytes exceeds {flash_free} bytes of flash"
        )
    if not _is_envelope(package):
        if accept_raw_firmware:
            new_version = bump_version(current_firmware)
            return InstallOutcome(UpdateResult.SUCCESS, "firmware image installed", firmware_version=new_version)
        return InstallOutcome(
            UpdateResult.UNSUPPORTED_PACKAGE, "not a model package and this device takes no raw firmware"
        )
    try:
        pkg = importlib.import_module("compilers.package")
        if public_key is not None:
            manifest, payload = pkg.verify(package, public_key)
        else:
            manifest, payload = pkg.parse(package)
    except ImportError as exc:
        return InstallOutcome(UpdateResult.UPDATE_FAILED, f"package support missing: {exc}")
    except Exception as exc:
        return InstallOutcome(
            UpdateResult.INTEGRITY_FAILURE, f"package verification failed: {type(exc).__name__}: {exc}"
        )
    fields = _manifest_dict(manifest)
    sha = hashlib.sha256(payload).hexdigest()
    if str(fields.get("sha256", sha)) != sha:
        return InstallOutcome(UpdateResult.INTEGRITY_FAILURE, "payload does not match the manifest sha256")
    size = fields.get("size")
    if size is not None and int(size) != len(payload):
        return InstallOutcome(UpdateResult.INTEGRITY_FAILURE, "payload size does not match the manifest")
    try:
        npu = NPU_OP in _ops(payload)
        if npu and accelerator == "none":
            return InstallOutcome(UpdateResult.UNSUPPORTED_PACKAGE, "an Ethos-U build and this device has no NPU")
        if ram_free_ml < MIN_HOST_ARENA:
            raise MemoryError(f"tensor arena of {ram_free_ml} bytes too small")
        if npu:
            values = run_npu_model(payload, ram_free_ml)
            output = str(values[11])
        else:
            values, output = run_model(payload, ram_free_ml)
    except MemoryError as exc:
        return InstallOutcome(UpdateResult.OUT_OF_RAM, str(exc))
    except Exception as exc:
        return InstallOutcome(UpdateResult.UPDATE_FAILED, f"runtime failed: {type(exc).__name__}: {exc}")
    name, version = str(fields.get("name", "")), str(fields.get("version", ""))
    arena = int(fields.get("arena_bytes") or 0) or ram_free_ml
    model = {0: name, 1: version, 2: sha, 3: str(fields.get("variant", "")), 4: arena, **values, 12: "ok"}
    log.info("sim.model_installed", name=name, version=version, sha256=sha[:12], output=output[:40])
    return InstallOutcome(
        UpdateResult.SUCCESS, "model installed", model=model, package_name=name, package_version=version
    )


def _ops(tflite: bytes) -> list[str]:
    from compilers.tflite_info import inspect_tflite

    try:
        return inspect_tflite(tflite).ops
    except ValueError:
        return []


def self_test(tflite: bytes, arena_bytes: int, previous_count: int) -> dict[int, Any]:
    """Execute /32002/0/13: run the installed model again; health "ok" or the error."""
    try:
        if NPU_OP in _ops(tflite):
            values = run_npu_model(tflite, arena_bytes)
            values[9] = previous_count
            values[12] = "ok"
            return values
        values, _ = run_model(tflite, arena_bytes)
    except Exception as exc:
        return {12: f"error: {type(exc).__name__}"[:60]}
    values[9] = previous_count + 1
    values[12] = "ok"
    return values
