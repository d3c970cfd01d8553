"""structlog set-up: JSON lines in production (not a TTY), pretty console output on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    *,
    stream: object = None,
) -> None:
    out = stream if stream is not None else sys.stderr
    pretty = fmt == "console" or (fmt == "auto" and hasattr(out, "isatty") and out.isatty())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if pretty:
        processors.append(structlog.dev.ConsoleRenderer(colors=bool(getattr(out, "isatty", lambda: False)())))
    else:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Quieten aiocoap's stdlib logging to our level so a storm doesn't flood the terminal.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=out)  # type: ignore[arg-type]


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
