"""The SQLite backend (aiosqlite, WAL, batched writes): the embedded default, one file under the data dir."""

from lwm2m_server.store.sqlite.engine import SqliteStore

__all__ = ["SqliteStore"]
