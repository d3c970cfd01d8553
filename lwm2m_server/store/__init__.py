"""Persistence behind the small :class:`Store` protocol; SQLite is the default backend."""

from lwm2m_server.store.base import Store
from lwm2m_server.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store"]
