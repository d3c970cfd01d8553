"""structlog set-up: JSON lines in production (not a TTY), pretty console output on a terminal.

Loggers are cached: a module's ``log = get_logger(__name__)`` builds its bound logger once, on first use, instead
of on every call (structlog's lazy proxy re-assembles one per call unless ``cache_logger_on_first_use``). structlog's
own cache would keep a logger used before :func:`configure_logging` on the old stream, level and processors for
good, so :func:`get_logger` returns a :class:`CachedLogger` that caches per configuration instead: each
``configure_logging`` call starts a new generation and every logger binds again on its next use.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, cast

import structlog

_generation = 0
"""Bumped by every :func:`configure_logging`: a :class:`CachedLogger` of an older generation binds again."""


class CachedLogger:
    """A named logger that assembles its structlog bound logger once per logging configuration."""

    __slots__ = ("_bound", "_generation", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._bound: Any = None
        self._generation = -1

    def _logger(self) -> Any:
        if self._generation != _generation:
            self._bound = structlog.get_logger(self._name).bind()
            self._generation = _generation
        return self._bound

    def __getattr__(self, attr: str) -> Any:  # info, debug, bind, ...: the current configuration's bound logger
        return getattr(self._logger(), attr)

    def __repr__(self) -> str:
        return f"<CachedLogger {self._name!r}>"


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
        # structlog's cache stays off: it would pin a logger used before this call (or before a test's
        # reconfiguration) to the old stream, level and processors. get_logger's CachedLogger caches instead.
        cache_logger_on_first_use=False,
    )
    global _generation
    _generation += 1  # every CachedLogger binds again under this configuration
    # Quieten aiocoap's stdlib logging to our level so a storm doesn't flood the terminal.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=out)  # type: ignore[arg-type]


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for module level: cached, and still following a later :func:`configure_logging`."""
    return cast(structlog.stdlib.BoundLogger, CachedLogger(name))
