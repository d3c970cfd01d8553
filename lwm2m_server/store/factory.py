"""The store a server runs on, from ``[store]``: SQLite (the embedded default) or PostgreSQL."""

from __future__ import annotations

from lwm2m_server.cluster.identity import resolve_node_id
from lwm2m_server.config import ConfigError, Settings
from lwm2m_server.store.base import Store
from lwm2m_server.store.repositories import Notifier
from lwm2m_server.store.retention import RetentionPolicy


def store_for(settings: Settings, retention: RetentionPolicy | None = None) -> Store:
    """The configured backend, not yet opened (``await store.open()`` connects and migrates)."""
    st = settings.store
    node_id = resolve_node_id(settings)
    if st.backend == "postgres":
        if not st.dsn:
            raise ConfigError('[store] backend = "postgres" needs a dsn (TOML store.dsn or --store-dsn)')
        from lwm2m_server.store.postgres import PostgresStore

        return PostgresStore(st.dsn, batch_max=st.batch_max, batch_window_ms=st.batch_window_ms, retention=retention,
                             node_id=node_id)
    from lwm2m_server.store.sqlite import SqliteStore

    return SqliteStore(settings.store_path, batch_max=st.batch_max, batch_window_ms=st.batch_window_ms,
                       retention=retention, node_id=node_id)


def notifier_for(settings: Settings) -> Notifier | None:
    """The channel between nodes on the configured store: PostgreSQL's LISTEN/NOTIFY; None on SQLite (one node)."""
    if settings.store.backend != "postgres":
        return None
    from lwm2m_server.store.postgres.notify import PgNotifier

    return PgNotifier(settings.store.dsn)
