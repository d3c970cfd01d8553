"""Configuration of simulated devices: hardware profile, LwM2M behaviour and injected faults.

Plain frozen dataclasses so a fleet file (TOML) maps onto them one to one and tests can build them inline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from lwm2m_server.protocol.fwupdate import DeliveryMethod

KIB = 1024

Delivery = Literal["push", "pull", "both"]
"""A DeliveryMethod's name (/5/0/9: :class:`lwm2m_server.protocol.fwupdate.DeliveryMethod`)."""


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """What object 32001 reports, and the budgets the device enforces on install."""

    name: str = "cortex-m4f-256k"
    ram_total: int = 256 * KIB
    ram_free_ml: int = 160 * KIB
    """The tensor arena budget: TFLM gets exactly this many bytes."""
    flash_total: int = 1024 * KIB
    flash_free: int = 512 * KIB
    """Flash for a downloaded package: a bigger package fails with Update Result 2."""
    cpu: str = "cortex-m4f"
    clock_mhz: int = 64
    fpu: bool = True
    accelerator: str = "none"
    accelerator_sram: int = 0
    runtime: str = "tflm-2024"
    ops: tuple[str, ...] = ()
    """Supported builtin ops; empty = anything TFLM supports."""
    max_package: int = 512 * KIB


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Faults injected into one device (a fleet applies them to a fraction of its devices)."""

    loss_pct: float = 0.0
    """Probability (percent) of dropping each incoming and each outgoing datagram."""
    delay_ms: float = 0.0
    """Extra one-way latency added to every outgoing datagram (a slow link)."""
    reboot_after_blocks: int | None = None
    """Reboot once after this many downloaded/received firmware blocks (the download then resumes)."""
    reboot_down_s: float = 0.2
    corrupt_payload: bool = False
    """Flip one byte of the received package (install then fails with result 5)."""
    corrupt_downloads: int = 0
    """Flip one byte of only the first N received packages (a transient corruption that a retry recovers)."""
    refuse_update: int | None = None
    """Answer Execute Update by failing with this Update Result (8 update failed, 10 cancelled)."""
    forget_result: bool = False
    """After a successful install come back Idle with Update Result 0 (a client that keeps no result across
    its reboot): only what it runs now tells the server the update took."""
    stay_in_queue_mode: bool = False
    """Force queue mode (sleep between uplinks) whatever the binding says."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss_pct <= 100.0:
            raise ValueError(f"loss_pct must be 0..100, got {self.loss_pct}")
        if self.corrupt_downloads < 0:
            raise ValueError("corrupt_downloads must be >= 0")
        if self.refuse_update is not None and self.refuse_update not in (8, 10, 11):
            raise ValueError(f"refuse_update must be 8, 10 or 11, got {self.refuse_update}")

    @property
    def any(self) -> bool:
        return self != FaultConfig()


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Everything that makes one simulated device behave the way it does."""

    endpoint: str
    profile: HardwareProfile = field(default_factory=HardwareProfile)
    lwm2m_version: Literal["1.0", "1.1", "1.2"] = "1.1"
    binding: Literal["U", "UQ"] = "U"
    lifetime: int = 300
    delivery: Delivery = "both"
    block_size: int = 256
    """Block2 size for pull downloads (16..1024, a power of two)."""
    faults: FaultConfig = field(default_factory=FaultConfig)
    server_public_key: bytes | None = None
    """Raw Ed25519 public key (32 bytes) that signs packages; None = signature not checked (size and hash still are)."""
    skip_downloading_state: bool = False
    """Some clients never show State 1 during a push (0 jumps to 2)."""
    manufacturer: str = "TinyMLaaS Sim"
    model_number: str = ""
    firmware_version: str = "1.0.0"
    serial: str = ""
    protocols: tuple[int, ...] = (0,)
    """/5/0/8: 0 CoAP, 1 CoAPS, 2 HTTP, 3 HTTPS, 4 CoAP/TCP, 5 CoAP/TLS."""
    accept_raw_firmware: bool = False
    """Install non-package images as plain firmware (bumps /3/0/3 and re-registers)."""
    update_interval_s: float | None = None
    """Seconds between Updates; None = 75 % of the lifetime."""
    queue_awake_s: float = 93.0
    """Queue mode: how long the device listens after its last uplink or incoming request. Keep it >= the
    server's ``queue_mode_window_s`` (93 s, CoAP MAX_TRANSMIT_WAIT), or the server talks to a sleeping radio."""
    queue_sleep_s: float = 60.0
    """Queue mode: how long it sleeps before waking to send an Update."""
    max_block1_size: int | None = None
    """Push: refuse bigger Block1 blocks with 4.13 (Size1 = this size)."""
    force_block1_size: int | None = None
    """Push: answer the first block with 2.31 Continue carrying this smaller SZX."""
    pull_drop_query: bool = True
    """Zephyr-style: drop the query of the Package URI."""
    psk_identity: str = ""
    """DTLS PSK identity (with ``psk_key``): needed to register with a ``coaps://`` server."""
    psk_key: bytes = b""
    request_timeout_s: float = 10.0
    """Pull: per-block timeout before the download is given up (Update Result 4)."""
    uplink_timeout_s: float = 15.0
    """How long a Register/Update/Send waits for the server's answer before it counts as failed (then retried)."""
    block_ack_timeout_s: float = 1.0
    """Pull: CoAP ACK_TIMEOUT for block requests (RFC 7252 default 2 s); retransmissions double it."""

    def __post_init__(self) -> None:
        if self.lwm2m_version not in ("1.0", "1.1", "1.2"):
            raise ValueError(f"lwm2m_version must be 1.0, 1.1 or 1.2, got {self.lwm2m_version!r}")
        if self.binding not in ("U", "UQ"):
            raise ValueError(f"binding must be U or UQ, got {self.binding!r}")
        DeliveryMethod.named(self.delivery)  # ValueError: "delivery must be push, pull or both, ..."
        for name in ("block_size", "max_block1_size", "force_block1_size"):
            size = getattr(self, name)
            if size is not None and (size not in (16, 32, 64, 128, 256, 512, 1024)):
                raise ValueError(f"{name} must be a power of two in 16..1024, got {size}")
        if self.lifetime < 1:
            raise ValueError("lifetime must be >= 1 s")

    @property
    def queue_mode(self) -> bool:
        return self.binding == "UQ" or self.faults.stay_in_queue_mode

    @property
    def update_interval(self) -> float:
        if self.update_interval_s is not None:
            return self.update_interval_s
        return max(1.0, 0.75 * self.lifetime)


def _coerce(cls: type, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Keep only known keys (unknown ones are an error naming ``where``) and turn lists into tuples."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}


def hardware_from_dict(raw: Mapping[str, Any], where: str = "profile") -> HardwareProfile:
    return HardwareProfile(**_coerce(HardwareProfile, raw, where))


def faults_from_dict(raw: Mapping[str, Any], where: str = "faults") -> FaultConfig:
    return FaultConfig(**_coerce(FaultConfig, raw, where))


def device_from_dict(endpoint: str, raw: Mapping[str, Any], where: str = "device") -> DeviceConfig:
    """Build a DeviceConfig from a flat mapping; ``hardware`` and ``faults`` may be nested tables."""
    data = dict(raw)
    hardware = data.pop("hardware", {})
    faults = data.pop("faults", {})
    if "server_public_key" in data and isinstance(data["server_public_key"], str):
        data["server_public_key"] = bytes.fromhex(data["server_public_key"])
    kwargs = _coerce(DeviceConfig, data, where)
    kwargs.pop("endpoint", None)
    return DeviceConfig(
        endpoint=endpoint,
        profile=hardware_from_dict(hardware, f"{where}.hardware"),
        faults=faults_from_dict(faults, f"{where}.faults"),
        **kwargs,
    )


__all__ = [
    "KIB",
    "DeviceConfig",
    "FaultConfig",
    "HardwareProfile",
    "device_from_dict",
    "faults_from_dict",
    "hardware_from_dict",
    "replace",
]
