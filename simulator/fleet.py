"""A fleet: many simulated devices from one profile file, concurrently in one process.

The file (``config/fleet-*.toml``) lists ``[[profiles]]`` with a ``count`` each; ``--devices N`` scales the
mix to N devices keeping the proportions. ``[faults]`` with a ``fraction`` applies faults to that share of the
fleet (chosen with a seeded RNG, so a run is reproducible). Devices start staggered so they don't all
register in the same millisecond, like a real fleet powering up.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from compilers.sizes import SizeError, parse_size
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.model import ObjectRegistry
from simulator.device import SimulatedDevice
from simulator.profiles import DeviceConfig, FaultConfig, HardwareProfile, device_from_dict, faults_from_dict

log = get_logger(__name__)

HARDWARE_KEYS = frozenset(f.name for f in fields(HardwareProfile))
ALIASES = {"ram": "ram_total", "flash": "flash_total", "ram_ml": "ram_free_ml"}
SIZE_KEYS = frozenset({"ram_total", "ram_free_ml", "flash_total", "flash_free", "accelerator_sram", "max_package"})
"""Hardware keys read by the one size parser: bytes or "256KiB" (KB/k read as KiB)."""


class FleetFileError(ValueError):
    """A fleet file that cannot be used; the message names the file and the profile."""


@dataclass(frozen=True)
class ProfileSpec:
    """One ``[[profiles]]`` entry: a device template and how many of it."""

    name: str
    count: int
    template: DeviceConfig


def _profile_spec(raw: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> ProfileSpec:
    data = {**defaults, **raw}
    data = {ALIASES.get(k, k): v for k, v in data.items()}
    count = data.pop("count", 1)
    if not isinstance(count, int) or count < 0:
        raise FleetFileError(f"{where}: count must be a non-negative integer")
    if "name" not in data:
        raise FleetFileError(f"{where}: a profile needs a name")
    hardware = {k: data.pop(k) for k in list(data) if k in HARDWARE_KEYS}
    hardware.update(data.pop("hardware", {}))
    for key in SIZE_KEYS & hardware.keys():
        if isinstance(hardware[key], str):
            try:
                hardware[key] = parse_size(hardware[key], key)
            except SizeError as exc:
                raise FleetFileError(f"{where}: {exc}") from None
    data["hardware"] = hardware
    try:
        template = device_from_dict(f"{hardware['name']}-template", data, where)
    except (TypeError, ValueError) as exc:
        raise FleetFileError(f"{where}: {exc}") from None
    return ProfileSpec(str(hardware["name"]), count, template)


def load_fleet_file(path: str | Path) -> tuple[list[ProfileSpec], dict[str, Any]]:
    """Parse a fleet file into profile specs and the ``[fleet]`` options (prefix, stagger_ms, seed, faults)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FleetFileError(f"{path}: {exc}") from None
    options = dict(doc.get("fleet", {}))
    defaults = dict(doc.get("defaults", {}))
    raw_profiles = doc.get("profiles")
    if not isinstance(raw_profiles, list) or not raw_profiles:
        raise FleetFileError(f"{path}: needs at least one [[profiles]] entry")
    specs = [_profile_spec(p, defaults, f"{path} profile {i + 1}") for i, p in enumerate(raw_profiles)]
    options["faults"] = dict(doc.get("faults", {}))
    return specs, options


def scale_counts(specs: Sequence[ProfileSpec], total: int | None) -> list[int]:
    """Counts per profile: as written, or ``total`` split in proportion (largest remainder, stable)."""
    counts = [s.count for s in specs]
    if total is None:
        return counts
    weight = sum(counts) or len(counts)
    weights = counts if sum(counts) else [1] * len(counts)
    exact = [total * w / weight for w in weights]
    out = [int(x) for x in exact]
    order = sorted(range(len(specs)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


class Fleet:
    def __init__(
        self,
        configs: Sequence[DeviceConfig],
        server_uri: str,
        *,
        stagger_s: float = 0.005,
        seed: int = 1,
        model: ObjectRegistry | None = None,
        bootstrap_uri: str | None = None,
    ) -> None:
        self.server_uri = server_uri
        self.bootstrap_uri = bootstrap_uri
        """Start every device from this bootstrap server (its PSK: the factory bootstrap key), not ``server_uri``."""
        self.stagger_s = stagger_s
        model = model or ObjectRegistry.default()
        self.devices = [SimulatedDevice(c, model=model, seed=seed + i) for i, c in enumerate(configs)]
        self.failed: list[tuple[str, str]] = []

    @classmethod
    def from_toml(
        cls,
        path: str | Path,
        server_uri: str,
        count: int | None = None,
        *,
        server_public_key: bytes | None = None,
        endpoint_prefix: str | None = None,
        bootstrap_uri: str | None = None,
    ) -> Fleet:
        specs, options = load_fleet_file(path)
        prefix = endpoint_prefix or str(options.get("endpoint_prefix", "sim"))
        seed = int(options.get("seed", 1))
        fault_options = dict(options.get("faults", {}))
        fraction = float(fault_options.pop("fraction", 0.0))
        try:
            fleet_faults = faults_from_dict(fault_options, f"{path} [faults]")
        except (TypeError, ValueError) as exc:
            raise FleetFileError(str(exc)) from None
        configs: list[DeviceConfig] = []
        for spec, n in zip(specs, scale_counts(specs, count), strict=True):
            for i in range(n):
                endpoint = f"{prefix}-{spec.name}-{i:04d}"
                key = server_public_key if server_public_key is not None else spec.template.server_public_key
                configs.append(replace(spec.template, endpoint=endpoint, server_public_key=key))
        rng = random.Random(seed)
        if fraction > 0 and fleet_faults.any:
            chosen = rng.sample(range(len(configs)), round(fraction * len(configs)))
            for i in chosen:
                configs[i] = replace(configs[i], faults=_merge_faults(configs[i].faults, fleet_faults))
        stagger = float(options.get("stagger_ms", 5.0)) / 1000.0
        return cls(configs, server_uri, stagger_s=stagger, seed=seed, bootstrap_uri=bootstrap_uri)

    async def start(self, *, wait_registered: float | None = 30.0) -> None:
        """Start every device (staggered); optionally wait until all registered (or the timeout passes)."""
        from simulator.bootstrap import BootstrapFailed, start_bootstrapped

        for device in self.devices:
            try:
                if self.bootstrap_uri is not None:
                    await start_bootstrapped(device, self.bootstrap_uri, wait_registered=False)
                else:
                    await device.start(self.server_uri, wait_registered=False)
            except (OSError, BootstrapFailed, TimeoutError) as exc:  # report, keep the others running
                self.failed.append((device.endpoint, str(exc) or type(exc).__name__))
            if self.stagger_s > 0:
                await asyncio.sleep(self.stagger_s)
        if wait_registered:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_registered(), wait_registered)

    async def wait_registered(self) -> None:
        await asyncio.gather(*(d.registered.wait() for d in self.devices if d.context is not None))

    async def stop(self, *, concurrency: int = 200) -> None:
        """De-register and close every device, ``concurrency`` at a time."""
        gate = asyncio.Semaphore(concurrency)

        async def one(device: SimulatedDevice) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await device.stop()

        await asyncio.gather(*(one(d) for d in self.devices))

    @property
    def registered(self) -> int:
        return sum(1 for d in self.devices if d.registered.is_set())

    def summary(self) -> list[dict[str, Any]]:
        """Per hardware profile: devices, registered, asleep, version/binding mix."""
        rows: dict[str, dict[str, Any]] = {}
        for d in self.devices:
            row = rows.setdefault(
                d.config.profile.name,
                {"profile": d.config.profile.name, "devices": 0, "registered": 0, "asleep": 0, "kinds": Counter()},
            )
            row["devices"] += 1
            row["registered"] += int(d.registered.is_set())
            row["asleep"] += int(d.asleep)
            row["kinds"][f"{d.config.lwm2m_version}/{'Q' if d.config.queue_mode else 'U'}"] += 1
        return list(rows.values())


def _merge_faults(own: FaultConfig, fleet: FaultConfig) -> FaultConfig:
    """Fleet-level faults fill in whatever the profile did not set itself."""
    base = FaultConfig()
    merged = {f.name: getattr(own, f.name) for f in fields(FaultConfig)}
    for f in fields(FaultConfig):
        if merged[f.name] == getattr(base, f.name):
            merged[f.name] = getattr(fleet, f.name)
    return FaultConfig(**merged)
