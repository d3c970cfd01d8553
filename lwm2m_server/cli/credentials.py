"""``tinymlaas credentials add|list|rotate|revoke|import``: device DTLS credentials over ``/api/credentials``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.cli.http import DEFAULT_SERVER, JsonOpt, ServerOpt, TokenOpt, echo_json, request

cred_app = typer.Typer(help="Device DTLS PSK credentials (admin): add, list, rotate, revoke, import.",
                       no_args_is_help=True)
app.add_typer(cred_app, name="credentials")

KeyOpt = Annotated[str | None, typer.Option("--key", help="PSK key in hex (1..16 bytes); default: generate one")]


def _issued(created: dict[str, object], as_json: bool) -> None:
    if as_json:
        echo_json(created)
        return
    typer.echo(f"{created['endpoint']}: identity {created['identity']!r}, key {created['key_fingerprint']}...")
    if created.get("key_hex"):
        typer.echo(f"generated key (shown only now): {created['key_hex']}")


@cred_app.command("add")
def add(
    endpoint: Annotated[str, typer.Argument(help="the device's endpoint name")],
    identity: Annotated[str, typer.Option("--identity", "-u", help="PSK identity (default: the endpoint)")] = "",
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Bind a PSK identity and key to an endpoint; a generated key is printed once."""
    body = {"endpoint": endpoint, "identity": identity, "key_hex": key}
    _issued(request(server, "POST", "/api/credentials", token=token, json=body), as_json)


@cred_app.command("list")
def list_(as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None) -> None:
    """Every credential: endpoint, identity, key fingerprint, created/rotated/revoked (never the keys)."""
    rows = request(server, "GET", "/api/credentials", token=token)
    if as_json:
        echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("endpoint", "identity", "mode", "key", "created", "rotated", "revoked")
    for r in rows:
        table.add_row(r["endpoint"], r["identity"], r["security_mode"], r["key_fingerprint"],
                      _when(r["created_at"]), _when(r["rotated_at"]), _when(r["revoked_at"]))
    Console().print(table)


@cred_app.command("rotate")
def rotate(
    endpoint: Annotated[str, typer.Argument(help="the device's endpoint name")],
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Give the endpoint a new key (generated unless --key)."""
    path = f"/api/credentials/{quote(endpoint, safe='')}/rotate"
    _issued(request(server, "POST", path, token=token, json={"key_hex": key}), as_json)


@cred_app.command("revoke")
def revoke(
    endpoint: Annotated[str, typer.Argument(help="the device's endpoint name")],
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Revoke the endpoint's credential: its DTLS handshakes fail from now on."""
    revoked = request(server, "DELETE", f"/api/credentials/{quote(endpoint, safe='')}", token=token)
    if as_json:
        echo_json(revoked)
    else:
        typer.echo(f"{revoked['endpoint']}: credential revoked")


@cred_app.command("import")
def import_(
    csv_file: Annotated[Path, typer.Argument(help="CSV: endpoint,identity,key_hex per line (a factory batch)")],
    bootstrap: Annotated[bool, typer.Option("--bootstrap", help="factory bootstrap PSKs (used for /bs only)")] = False,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Import a factory batch: every line or none (the first bad line is named)."""
    try:
        text = csv_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {csv_file}: {exc}") from exc
    out = request(server, "POST", "/api/credentials/import", token=token, json={"csv": text, "bootstrap": bootstrap})
    if as_json:
        echo_json(out)
    else:
        typer.echo(f"imported {out['imported']} credentials")


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
