"""A model name + a device -> a signed package in the store: profile -> Target -> CompileService.plan -> sign.

Compilation runs in the compile service's process pool; signing and hashing run in a thread, so the event loop
only awaits. The package is content-addressed, so devices of the same compile class share one package.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lwm2m_server.config import Settings
from lwm2m_server.logging import get_logger
from lwm2m_server.ota.packages import PackageInfo, PackageStore

log = get_logger(__name__)


class BuildError(Exception):
    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class NotFitting(BuildError):
    """No variant of the model fits the device's class (the fit report's reason)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 422)


def server_public_key(secrets_dir: Path) -> bytes:
    """The signing key's public half (the key lives in ``[server] secrets_dir``, by default the data dir)."""
    from compilers import keys

    return bytes(keys.public_key_bytes(keys.load_or_create_signing_key(Path(secrets_dir))))


def make_compile_service(settings: Settings, *, cache_dir: Path | None = None, zoo_epochs: int | None = None) -> Any:
    """The CompileService with the configured margins (``[compile]``), created on first use."""
    from compilers.planner import CompileService, PlanOptions

    c = settings.compile
    options = PlanOptions(
        accuracy_margin=c.accuracy_margin,
        flash_margin_bytes=c.flash_margin_bytes,
        runtime_overhead_bytes=c.runtime_overhead_bytes,
    )
    return CompileService(
        cache_dir or settings.compile_cache_dir, workers=c.workers, options=options, zoo_epochs=zoo_epochs
    )


def target_from_profile(profile: Any) -> Any:
    """DeviceProfile -> compilers Target (RAM budget for ML, flash free for models, FPU, accelerator, ops)."""
    from compilers.target import ACCELERATORS, Target

    to_target = getattr(profile, "to_target", None)
    if callable(to_target):
        return to_target()
    ram = getattr(profile, "ram_free_ml", None)
    flash = getattr(profile, "flash_free", None) or getattr(profile, "max_package", None)
    if not ram or not flash:
        raise BuildError("the device's hardware (/32001/0) is unknown: cannot compile for it")
    accel = str(getattr(profile, "accelerator", None) or "none")
    ops = getattr(profile, "ops", None)
    return Target(
        ram_bytes=int(ram),
        flash_bytes=int(flash),
        fpu=bool(getattr(profile, "fpu", True)),
        accelerator=accel if accel in ACCELERATORS else "none",
        ops=frozenset(ops) if ops else None,
    )


def sign_artifact(art: Any, model: str, secrets_dir: Path, target: dict[str, Any] | None = None) -> tuple[bytes, bytes]:
    """Sign a compiled artifact into a package; the manifest records the compile class it was built for."""
    from compilers import keys, package

    key = keys.load_or_create_signing_key(Path(secrets_dir))
    blob = package.build_package(
        name=model,
        version="1",
        variant=art.variant,
        arena_bytes=art.arena_bytes,
        payload=art.data,
        signing_key=key,
        target=target,
    )
    return bytes(blob), bytes(keys.public_key_bytes(key))


async def build_for_device(
    server: Any, compile_service: Any, catalog: Any, packages: PackageStore, endpoint: str, model: str
) -> PackageInfo:
    """``catalog``: the :class:`~lwm2m_server.models_catalog.ModelCatalog` that resolves ``model``."""
    profile = await server.profile(endpoint)
    if profile is None:
        raise BuildError(f"no hardware profile for {endpoint!r} yet (is it registered?)", 404)
    from lwm2m_server.models_catalog import UnknownModel

    target = target_from_profile(profile)
    try:
        source = await catalog.resolve_async(model)  # zoo name, or an uploaded model with its data
    except UnknownModel as exc:
        raise BuildError(str(exc), 404) from None
    report = await compile_service.plan(source, target)
    art = report.chosen_artifact
    if art is None:
        reasons = "; ".join(f"{v.variant}: {getattr(v, 'reason', '')}" for v in getattr(report, "variants", []))
        raise NotFitting(f"{model} does not fit {endpoint}: {reasons or 'no variant fits'}")
    secrets_dir = server.settings.secrets_dir
    blob, public_key = await asyncio.to_thread(sign_artifact, art, model, secrets_dir, target.to_dict())
    info = await packages.add(blob, "model", public_key=public_key)
    log.info("ota.model_built", endpoint=endpoint, model=model, variant=art.variant, sha256=info.sha256)
    return info
