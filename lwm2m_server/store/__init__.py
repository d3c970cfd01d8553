"""Persistence behind the typed :class:`Store` protocol (one repository per concern, see
:mod:`lwm2m_server.store.repositories`). Backends: SQLite (:mod:`.sqlite`, the embedded default) and PostgreSQL
(:mod:`.postgres`); both run the repositories of :mod:`.sql`; :func:`~lwm2m_server.store.factory.store_for`
picks one from ``[store]``."""

from lwm2m_server.store.base import Store
from lwm2m_server.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store"]
