"""Size flags for every command: the one size parser, the echo of the bytes read, a usage error in words."""

from __future__ import annotations

import typer

from compilers.sizes import EXAMPLES, SizeError, parse_size, size_note
from lwm2m_server.cli.app import CliError

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
