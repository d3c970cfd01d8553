"""``tinymlaas bootstrap add|list|remove``: per-endpoint bootstrap configs over ``/api/bootstrap``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer

from lwm2m_server.cli.app import app
from lwm2m_server.cli.http import DEFAULT_SERVER, JsonOpt, ServerOpt, TokenOpt, echo_json, request

bs_app = typer.Typer(help="Bootstrap configs (admin): what /bs provisions on each endpoint.", no_args_is_help=True)
app.add_typer(bs_app, name="bootstrap")


@bs_app.command("add")
def add(
    endpoint: Annotated[str, typer.Argument(help="the device's endpoint name")],
    server_uri: Annotated[str, typer.Option("--server-uri", help="coaps://host:port (psk) or coap://host:port")],
    mode: Annotated[str, typer.Option("--mode", help="psk (fresh DTLS key generated per bootstrap) or nosec")] = "psk",
    lifetime: Annotated[int, typer.Option("--lifetime", help="registration lifetime, s")] = 300,
    binding: Annotated[str, typer.Option("--binding", help="U or UQ (queue mode)")] = "U",
    ssid: Annotated[int, typer.Option("--ssid", help="Short Server ID")] = 1,
    keep: Annotated[bool, typer.Option("--keep", help="don't Bootstrap-Delete /0 and /1 first")] = False,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Add or replace an endpoint's bootstrap config."""
    body = {"endpoint": endpoint, "server_uri": server_uri, "security_mode": mode, "lifetime": lifetime,
            "binding": binding, "ssid": ssid, "delete_first": not keep}
    out = request(server, "PUT", "/api/bootstrap", token=token, json=body)
    if as_json:
        echo_json(out)
    else:
        typer.echo(f"{out['endpoint']}: bootstrap to {out['server_uri']} ({out['security_mode']})")


@bs_app.command("list")
def list_(as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None) -> None:
    """Every bootstrap config."""
    rows = request(server, "GET", "/api/bootstrap", token=token)
    if as_json:
        echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("endpoint", "server uri", "mode", "lifetime", "binding", "ssid", "delete first")
    for r in rows:
        table.add_row(r["endpoint"], r["server_uri"], r["security_mode"], str(r["lifetime"]), r["binding"],
                      str(r["ssid"]), "yes" if r["delete_first"] else "no")
    Console(width=200).print(table)


@bs_app.command("remove")
def remove(
    endpoint: Annotated[str, typer.Argument(help="the device's endpoint name")],
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Remove an endpoint's bootstrap config: its next Bootstrap-Request is refused (4.00)."""
    out = request(server, "DELETE", f"/api/bootstrap/{quote(endpoint, safe='')}", token=token)
    if as_json:
        echo_json(out)
    else:
        typer.echo(f"{out['endpoint']}: bootstrap config removed")
