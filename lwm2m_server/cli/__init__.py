"""The ``tinymlaas`` command. Each module below attaches its commands to :data:`app`.

Command modules keep heavy imports (TensorFlow, aiocoap, FastAPI) inside the command functions,
so ``tinymlaas --help`` and the thin REST clients start fast.
"""

from __future__ import annotations

import sys

# Command modules register themselves on import (one line per module).
from lwm2m_server.cli import bootstrap as _bootstrap  # noqa: F401
from lwm2m_server.cli import cluster as _cluster  # noqa: F401
from lwm2m_server.cli import codec as _codec  # noqa: F401
from lwm2m_server.cli import compile as _compile  # noqa: F401
from lwm2m_server.cli import composite as _composite  # noqa: F401
from lwm2m_server.cli import credentials as _credentials  # noqa: F401
from lwm2m_server.cli import demo as _demo  # noqa: F401
from lwm2m_server.cli import devices as _devices  # noqa: F401
from lwm2m_server.cli import info as _info  # noqa: F401
from lwm2m_server.cli import models as _models  # noqa: F401
from lwm2m_server.cli import rollout as _rollout  # noqa: F401
from lwm2m_server.cli import serve as _serve  # noqa: F401
from lwm2m_server.cli import sim as _sim  # noqa: F401
from lwm2m_server.cli import tokens as _tokens  # noqa: F401
from lwm2m_server.cli import update as _update  # noqa: F401
from lwm2m_server.cli.app import CliError, app


def main() -> None:
    try:
        app()
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.code)


__all__ = ["app", "main"]
