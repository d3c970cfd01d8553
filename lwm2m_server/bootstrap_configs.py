"""Per-endpoint bootstrap configs: add (or replace), list, get, remove; every change audited.

The config is what the bootstrap server (:mod:`lwm2m_server.coap.bootstrap`) provisions on a device that sends
Bootstrap-Request; its validation is the sans-IO core's :func:`lwm2m_server.protocol.bootstrap.parse_config`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lwm2m_server.protocol.bootstrap import BootstrapConfig, parse_config
from lwm2m_server.store.audit import AuditLog
from lwm2m_server.store.repositories import BootstrapRepository, BootstrapRow


def _config(row: BootstrapRow) -> BootstrapConfig:
    return BootstrapConfig(row.endpoint, row.server_uri, row.security_mode, row.lifetime, row.binding, row.ssid,
                           row.delete_first)


def view(row: BootstrapRow) -> dict[str, Any]:
    return {**_config(row).as_dict(), "created_at": row.created_at}


class BootstrapConfigs:
    def __init__(self, table: BootstrapRepository, audit: AuditLog) -> None:
        self.table = table
        self.audit = audit

    async def put(self, data: Mapping[str, Any], *, actor: str = "system") -> BootstrapRow:
        """Validate and store (replacing any config of the endpoint); raises BootstrapError when invalid."""
        config = parse_config(data)
        row = BootstrapRow(config.endpoint, config.server_uri, config.security_mode, config.lifetime,
                           config.binding, config.ssid, config.delete_first, time.time())
        await self.table.put(row)
        await self.audit.record("bootstrap.config_put", endpoint=config.endpoint, actor=actor,
                                detail=config.as_dict())
        return row

    async def get(self, endpoint: str) -> BootstrapConfig | None:
        row = await self.table.get(endpoint)
        return _config(row) if row is not None else None

    async def rows(self) -> list[BootstrapRow]:
        return await self.table.all()

    async def row(self, endpoint: str) -> BootstrapRow | None:
        return await self.table.get(endpoint)

    async def remove(self, endpoint: str, *, actor: str = "system") -> bool:
        removed = await self.table.remove(endpoint)
        if removed:
            await self.audit.record("bootstrap.config_remove", endpoint=endpoint, actor=actor)
        return removed
