"""The repositories' SQL, one module per concern, in the subset SQLite and PostgreSQL both accept (``?``
placeholders, ``ON CONFLICT`` upserts, no rowid). Each backend supplies an :class:`~lwm2m_server.store.sql.engine.Sql`
engine (connection, batched writes, placeholder style) and its own versioned DDL migrations; so both backends
run the very same queries and the contract suite (``tests/unit/store``) checks they behave the same.
"""
