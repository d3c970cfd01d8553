"""Size and filter flags for every command: the one size parser and the filter language, checked before any
request so a mistake is a usage error (exit 2) in words; a datasheet unit is echoed as the bytes it became."""

from __future__ import annotations

import typer

from compilers.sizes import EXAMPLES, SizeError, parse_size, size_note
from lwm2m_server.cli.app import CliError
from lwm2m_server.rollouts.filters import FILTER_HELP, FilterError, parse_filter

__all__ = ["FILTER_HELP", "SIZE_HELP", "check_filter", "read_optional_size", "read_size"]

SIZE_HELP = f"size: {EXAMPLES}"


def read_size(text: str, flag: str) -> int:
    """Bytes for ``flag``'s value; a datasheet unit (64KB, 64k) is echoed on stderr as the byte count it became."""
    try:
        value = parse_size(text, flag)
    except SizeError as exc:
        raise CliError(str(exc), code=2) from None
    note = size_note(text, flag)
    if note is not None:
        typer.echo(f"note: {note}", err=True)
    return value


def read_optional_size(text: str | None, flag: str) -> int | None:
    return None if text is None else read_size(text, flag)


def check_filter(text: str) -> None:
    """Parse a rollout filter here (the server's own parser): exit 2 naming the mistake; echo size notes."""
    try:
        flt = parse_filter(text)
    except FilterError as exc:
        raise CliError(f"--filter: {exc}", code=2) from None
    for note in flt.notes:
        typer.echo(f"note: {note}", err=True)
