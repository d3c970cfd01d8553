"""The live registration record: what a device told us in Register/Update, plus where and when we saw it."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.protocol.registration import intern_objects, intern_set


# The link-set columns as stored: registrations share a few distinct link sets, so each is serialised once.
@functools.lru_cache(maxsize=1024)
def _formats_json(formats: frozenset[int]) -> str:
    return json.dumps(sorted(formats))


@functools.lru_cache(maxsize=1024)
def _objects_json(items: tuple[tuple[int, str | None], ...]) -> str:
    return json.dumps({str(k): v for k, v in sorted(items)})


@functools.lru_cache(maxsize=1024)
def _instances_json(instances: frozenset[LwM2MPath]) -> str:
    return json.dumps([str(p) for p in sorted(instances)])


@dataclass(slots=True)
class Registration:
    endpoint: str
    reg_id: str
    host: str
    port: int
    lifetime: int
    lwm2m_version: str = "1.0"
    binding: str = "U"
    queue_mode: bool = False
    root_path: str = "/"
    content_formats: frozenset[int] = frozenset()
    objects: Mapping[int, str | None] = field(default_factory=dict)
    instances: frozenset[LwM2MPath] = frozenset()
    sms: str | None = None
    registered_at: float = field(default_factory=time.time)
    updated_at: float = 0.0  # last Register or Update: the lifetime counts from here
    last_seen: float = 0.0  # last uplink of any kind (Register, Update, notification)
    security: str = "none"  # how it registered: "psk" (over DTLS) or "none" (plain CoAP)

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.registered_at
        if not self.last_seen:
            self.last_seen = self.updated_at

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def location(self) -> str:
        return f"/rd/{self.reg_id}"

    def expires_at(self, grace: float = 0.0) -> float:
        return self.updated_at + self.lifetime + grace

    def has_object(self, object_id: int) -> bool:
        return object_id in self.objects or any(p.object_id == object_id for p in self.instances)

    def has_instance(self, path: LwM2MPath) -> bool:
        return path in self.instances

    def copy(self, **changes: Any) -> Registration:
        return replace(self, **changes)

    # -- persistence ------------------------------------------------------------------------------------------
    def to_row(self) -> tuple[Any, ...]:
        return (
            self.endpoint,
            self.reg_id,
            self.host,
            self.port,
            self.lifetime,
            self.lwm2m_version,
            self.binding,
            int(self.queue_mode),
            self.root_path,
            _formats_json(self.content_formats),
            _objects_json(tuple(self.objects.items())),
            _instances_json(self.instances),
            self.sms,
            self.registered_at,
            self.updated_at,
            self.last_seen,
            self.security,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Registration:
        return cls(
            endpoint=row["endpoint"],
            reg_id=row["reg_id"],
            host=row["host"],
            port=int(row["port"]),
            lifetime=int(row["lifetime"]),
            lwm2m_version=row["lwm2m_version"],
            binding=row["binding"],
            queue_mode=bool(row["queue_mode"]),
            root_path=row["root_path"],
            content_formats=intern_set(frozenset(int(c) for c in json.loads(row["content_formats"]))),
            objects=intern_objects({int(k): v for k, v in json.loads(row["objects"]).items()}),
            instances=intern_set(frozenset(LwM2MPath.parse(p) for p in json.loads(row["instances"]))),
            sms=row["sms"],
            registered_at=float(row["registered_at"]),
            updated_at=float(row["updated_at"]),
            last_seen=float(row["last_seen"]),
            security=str(row.get("security") or "none"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view for the REST API and events."""
        return {
            "endpoint": self.endpoint,
            "reg_id": self.reg_id,
            "address": f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}",
            "lifetime": self.lifetime,
            "lwm2m_version": self.lwm2m_version,
            "binding": self.binding,
            "queue_mode": self.queue_mode,
            "root_path": self.root_path,
            "content_formats": sorted(self.content_formats),
            "objects": {str(k): v for k, v in sorted(self.objects.items())},
            "instances": [str(p) for p in sorted(self.instances)],
            "sms": self.sms,
            "registered_at": self.registered_at,
            "updated_at": self.updated_at,
            "last_seen": self.last_seen,
            "security": self.security,
        }


REGISTRATION_COLUMNS = (
    "endpoint",
    "reg_id",
    "host",
    "port",
    "lifetime",
    "lwm2m_version",
    "binding",
    "queue_mode",
    "root_path",
    "content_formats",
    "objects",
    "instances",
    "sms",
    "registered_at",
    "updated_at",
    "last_seen",
    "security",
)
