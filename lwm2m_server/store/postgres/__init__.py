"""The PostgreSQL backend (asyncpg): ``[store] backend = "postgres"`` with a ``dsn``; several nodes share it."""

from lwm2m_server.store.postgres.engine import PostgresStore

__all__ = ["PostgresStore"]
