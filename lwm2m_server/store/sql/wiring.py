"""The repositories every SQL backend carries: one instance per concern over the backend's engine, built here once
for both (their tables and SQL are the same; only the engine under them differs)."""

from __future__ import annotations

from lwm2m_server.store.retention import RetentionPolicy
from lwm2m_server.store.sql.audit import SqlAuditLog
from lwm2m_server.store.sql.bootstrap import SqlBootstrapRepository
from lwm2m_server.store.sql.credentials import SqlCredentialRepository
from lwm2m_server.store.sql.engine import Sql
from lwm2m_server.store.sql.key_fingerprints import SqlKeyFingerprints
from lwm2m_server.store.sql.leases import SqlLeaseRepository
from lwm2m_server.store.sql.nodes import SqlNodeRepository
from lwm2m_server.store.sql.ota import SqlOtaJobRepository, SqlPackageRepository
from lwm2m_server.store.sql.queue import SqlQueueRepository
from lwm2m_server.store.sql.rollouts import SqlRolloutTables
from lwm2m_server.store.sql.send_values import SqlSendValues
from lwm2m_server.store.sql.stats import SqlFleetStats
from lwm2m_server.store.sql.tokens import SqlTokenRepository


class SqlRepositories:
    """Mixed into a backend store: ``store.queue``, ``store.ota_jobs``, ... (the :class:`~lwm2m_server.store.base.Store`
    attributes), all over the store's own engine."""

    queue: SqlQueueRepository
    ota_jobs: SqlOtaJobRepository
    packages: SqlPackageRepository
    rollouts: SqlRolloutTables
    audit: SqlAuditLog
    tokens: SqlTokenRepository
    send_values: SqlSendValues
    stats: SqlFleetStats
    leases: SqlLeaseRepository
    credentials: SqlCredentialRepository
    nodes: SqlNodeRepository
    bootstrap: SqlBootstrapRepository
    key_fingerprints: SqlKeyFingerprints

    def _wire_repositories(self, sql: Sql, retention: RetentionPolicy | None) -> None:
        """Every repository over ``sql`` (the store itself); ``retention`` also prunes the Send values."""
        self.queue = SqlQueueRepository(sql)
        self.ota_jobs = SqlOtaJobRepository(sql)
        self.packages = SqlPackageRepository(sql)
        self.rollouts = SqlRolloutTables(sql)
        self.audit = SqlAuditLog(sql)
        self.tokens = SqlTokenRepository(sql)
        self.send_values = SqlSendValues(sql, retention)
        self.stats = SqlFleetStats(sql)
        self.leases = SqlLeaseRepository(sql)
        self.credentials = SqlCredentialRepository(sql)
        self.nodes = SqlNodeRepository(sql)
        self.bootstrap = SqlBootstrapRepository(sql)
        self.key_fingerprints = SqlKeyFingerprints(sql)
