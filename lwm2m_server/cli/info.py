"""``tinymlaas version`` and ``tinymlaas config``: what is installed and what settings are in force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lwm2m_server import __version__
from lwm2m_server.cli.app import CliError, app
from lwm2m_server.config import ConfigError, load_settings


@app.command()
def version() -> None:
    """Print the TinyMLaaS version."""
    typer.echo(__version__)


@app.command("config")
def show_config(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")] = None,
) -> None:
    """Print the effective settings (file + TINYMLAAS_* env vars) as JSON."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
