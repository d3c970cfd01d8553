"""Operator authentication: API tokens with roles, and an audit of refused requests that a flood cannot grow."""

from lwm2m_server.auth.roles import Role
from lwm2m_server.auth.tokens import Principal, TokenError, TokenService

__all__ = ["Principal", "Role", "TokenError", "TokenService"]
