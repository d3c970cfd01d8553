"""The HTTP API (FastAPI on uvicorn, on the server's event loop): ``create_app`` and ``ApiRunner``.

Imported lazily so that ``lwm2m_server.api.values`` and friends stay cheap to import (CLI, MQTT bridge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lwm2m_server.api.app import create_app
    from lwm2m_server.api.runner import ApiRunner

__all__ = ["ApiRunner", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from lwm2m_server.api.app import create_app

        return create_app
    if name == "ApiRunner":
        from lwm2m_server.api.runner import ApiRunner

        return ApiRunner
    raise AttributeError(name)
