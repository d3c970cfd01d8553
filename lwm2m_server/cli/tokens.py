"""``tinymlaas token create|list|revoke``: API tokens over the admin REST routes (``/api/tokens``)."""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import quote

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.cli.http import DEFAULT_SERVER, JsonOpt, ServerOpt, TokenOpt, echo_json, request

token_app = typer.Typer(help="API tokens (admin): create, list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")

ROLES = ("viewer", "operator", "admin")


@token_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="viewer | operator | admin")],
    name: Annotated[str, typer.Option("--name", help="a label for lists and the audit log")] = "",
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Create a token and print it once (the server keeps only its hash)."""
    if role not in ROLES:
        raise CliError(f"--role must be one of {', '.join(ROLES)}, got {role!r}", code=2)
    created = request(server, "POST", "/api/tokens", token=token, json={"role": role, "name": name})
    if as_json:
        echo_json(created)
        return
    typer.echo(f"token {created['id']} ({created['name']}, {created['role']}); shown only now:")
    typer.echo(created["token"])


@token_app.command("list")
def list_(as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None) -> None:
    """Every token: id, name, role, created, revoked (never the secrets)."""
    tokens = request(server, "GET", "/api/tokens", token=token)
    if as_json:
        echo_json(tokens)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "name", "role", "created", "revoked")
    for t in tokens:
        table.add_row(t["id"], t["name"], t["role"], _when(t["created_at"]), _when(t["revoked_at"]))
    Console().print(table)


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `token list`)")],
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    revoked = request(server, "DELETE", f"/api/tokens/{quote(token_id, safe='')}", token=token)
    if as_json:
        echo_json(revoked)
    else:
        typer.echo(f"token {revoked['id']} ({revoked['name']}) revoked")


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
