"""Per-endpoint bootstrap configs: add (or replace), list, get, remove; every change audited. Also the
bootstrap server's provider (:class:`lwm2m_server.coap.bootstrap.BootstrapProvider`): who may bootstrap as which
endpoint, and the plan, with fresh PSK credentials stored in the credential service *before* they are written.

Rules: an endpoint with no config is refused (4.00, audited). An endpoint with a factory bootstrap PSK
(``tinymlaas credentials import --bootstrap``) must bootstrap over coaps with that identity; a DTLS identity
that is not the endpoint's bootstrap identity is refused (4.03, audited). A ``psk`` config hands out a key, so it
is provisioned over coaps only (a plain Bootstrap-Request for it gets 4.03: the key would travel in clear).
The validation of configs is the sans-IO core's :func:`lwm2m_server.protocol.bootstrap.parse_config`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from lwm2m_server.credentials import CredentialService
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.bootstrap import (
    BootstrapConfig,
    BootstrapError,
    BootstrapStep,
    PskMaterial,
    parse_config,
    plan,
)
from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.store.audit import AuditLog
from lwm2m_server.store.repositories import BootstrapRepository, BootstrapRow


def _config(row: BootstrapRow) -> BootstrapConfig:
    return BootstrapConfig(row.endpoint, row.server_uri, row.security_mode, row.lifetime, row.binding, row.ssid,
                           row.delete_first)


def view(row: BootstrapRow) -> dict[str, Any]:
    return {**_config(row).as_dict(), "created_at": row.created_at}


log = get_logger(__name__)


def new_identity() -> str:
    """A fresh PSK identity for a bootstrapped device (random: it names nothing guessable; 19 bytes)."""
    return "bs-" + secrets.token_hex(8)


class BootstrapConfigs:
    def __init__(self, table: BootstrapRepository, audit: AuditLog, credentials: CredentialService,
                 model: ObjectRegistry) -> None:
        self.table = table
        self.audit = audit
        self.credentials = credentials
        self.model = model

    # -- the bootstrap server's provider ------------------------------------------------------------------
    async def _refuse(self, endpoint: str, peer: str, identity: str | None, reason: str, code: str) -> BootstrapError:
        await self.audit.record("bootstrap.refused", endpoint=endpoint, actor=f"coap:{peer}",
                                detail={"identity": identity, "reason": reason})
        log.warning("bootstrap_refused", endpoint=endpoint, identity=identity, reason=reason, peer=peer)
        return BootstrapError(reason, code)

    async def provision(self, endpoint: str, identity: str | None, peer: str) -> list[BootstrapStep]:
        factory = self.credentials.has_bootstrap(endpoint)
        if identity is not None and self.credentials.bootstrap_endpoint_for(identity) != endpoint:
            raise await self._refuse(endpoint, peer, identity, "DTLS identity is not the endpoint's bootstrap PSK",
                                     "4.03")
        if identity is None and factory:
            raise await self._refuse(endpoint, peer, identity, "endpoint has a bootstrap PSK; plain CoAP refused",
                                     "4.03")
        config = await self.get(endpoint)
        if config is None:
            raise await self._refuse(endpoint, peer, identity, "no bootstrap config for this endpoint", "4.00")
        psk: PskMaterial | None = None
        if config.security_mode == "psk":
            if identity is None:
                raise await self._refuse(endpoint, peer, identity, "a psk config is provisioned over coaps only",
                                         "4.03")
            info, key = await self.credentials.add(endpoint, new_identity(), None, actor="bootstrap", replace=True)
            psk = PskMaterial(info.identity, key)
        steps = plan(config, psk, self.model)
        await self.audit.record("bootstrap.start", endpoint=endpoint, actor=f"coap:{peer}",
                                detail={"server_uri": config.server_uri, "security_mode": config.security_mode,
                                        "identity": psk.identity if psk else None})
        return steps

    async def finished(self, endpoint: str, peer: str, error: str | None) -> None:
        await self.audit.record("bootstrap.finished", endpoint=endpoint, actor=f"coap:{peer}",
                                detail={"ok": error is None, "error": error})

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
