"""The metadata of one immutable, content-addressed OTA package (what the store's ``packages`` repository keeps)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["model", "firmware"]


@dataclass(frozen=True, slots=True)
class PackageInfo:
    sha256: str
    kind: Kind
    size: int
    name: str
    version: str
    payload_sha256: str  # what /32002/0/2 must report after install; == sha256 for firmware
    variant: str = ""
    arena_bytes: int = 0
    created_at: float = 0.0

    @property
    def etag(self) -> bytes:
        return bytes.fromhex(self.sha256[:16])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
