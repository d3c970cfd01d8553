"""The root ``tinymlaas`` Typer application; command modules attach to it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tinymlaas",
    help="TinyML as-a-Service: LwM2M device management, per-device model compilation and OTA rollouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code ``code``, never a traceback."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
