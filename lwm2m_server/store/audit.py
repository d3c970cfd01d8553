"""The append-only audit log: who did what, when (rollout actions, token changes, refused logins).

One table for every area; ``rollout_id`` and ``endpoint`` are optional subjects so rollout and device
histories stay queryable, ``actor`` is who acted (``system``, ``rest``, a token name, a client address).
Every backend hands its implementation out as ``store.audit``.
"""

from lwm2m_server.store.repositories import AuditRepository as AuditLog

__all__ = ["AuditLog"]
