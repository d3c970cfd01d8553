"""The typed set of services one server process runs, handed to the REST API (``api/deps.py``) at creation.

Built by the composition root (:class:`~lwm2m_server.application.Application`); a bare :class:`LwM2MServer`
(tests, benchmarks) gets :meth:`Services.for_server`, with OTA and rollouts only when given. Routes whose service
is absent answer 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lwm2m_server.auth.tokens import TokenService
from lwm2m_server.compiling import Compiling
from lwm2m_server.models_catalog import ModelCatalog
from lwm2m_server.store.audit import AuditLog

if TYPE_CHECKING:
    from lwm2m_server.cluster.forwarding import DeviceForwarder
    from lwm2m_server.cluster.membership import ClusterMembership
    from lwm2m_server.ota.service import OtaService
    from lwm2m_server.rollouts.deployer import FleetDeployer
    from lwm2m_server.rollouts.service import RolloutService
    from lwm2m_server.server import LwM2MServer


@dataclass(frozen=True)
class Services:
    server: LwM2MServer
    tokens: TokenService
    audit: AuditLog
    catalog: ModelCatalog
    compiling: Compiling
    ota: OtaService | None = None
    rollouts: RolloutService | None = None
    deployer: FleetDeployer | None = None
    cluster: ClusterMembership | None = None
    forwarder: DeviceForwarder | None = None  # several nodes: REST calls for devices other nodes hold

    @classmethod
    def for_server(
        cls,
        server: LwM2MServer,
        *,
        tokens: TokenService | None = None,
        audit: AuditLog | None = None,
        ota: OtaService | None = None,
        rollouts: RolloutService | None = None,
        deployer: FleetDeployer | None = None,
    ) -> Services:
        """Services over ``server``'s store; the catalog and compile service are OTA's when it is given."""
        catalog = ota.catalog if ota is not None else ModelCatalog(server.settings.server.data_dir)
        compiling = ota.compiling if ota is not None else Compiling(server.settings)
        return cls(
            server=server,
            tokens=tokens if tokens is not None else TokenService(server.store.tokens),
            audit=audit if audit is not None else server.store.audit,
            catalog=catalog,
            compiling=compiling,
            ota=ota,
            rollouts=rollouts,
            deployer=deployer,
        )
