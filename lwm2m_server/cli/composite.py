"""Thin REST clients for the LwM2M 1.1 multi-path operations and Send:
``tinymlaas read-composite | write-composite | observe-composite | data``. Same conventions as
:mod:`lwm2m_server.cli.devices` (``--server``, ``--json``, exit 2 for a bad request, 1 for a remote failure).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.cli.devices import (
    JsonOpt,
    TimeoutOpt,
    _content_table,
    _device_url,
    _fmt_value,
    _http_timeout,
    _params,
)
from lwm2m_server.cli.http import DEFAULT_SERVER, ServerOpt, TokenOpt, echo_json, request, watch_notifications

PathsArg = Annotated[list[str], typer.Argument(help="LwM2M paths, e.g. /3/0/9 /1/0/1")]


@app.command("read-composite")
def read_composite(endpoint: str, paths: PathsArg, server: ServerOpt = DEFAULT_SERVER, timeout: TimeoutOpt = None,
                   as_json: JsonOpt = False, token: TokenOpt = None) -> None:  # fmt: skip
    """Read several PATHS of device ENDPOINT in one request (Read-Composite, LwM2M 1.1)."""
    data = request(server, "POST", _device_url(endpoint, "composite/read"), params=_params(None, timeout),
                   json={"paths": paths}, timeout=_http_timeout(timeout), token=token)  # fmt: skip
    echo_json(data["content"]) if as_json else _content_table(f"{endpoint} composite", data["content"])


@app.command("write-composite")
def write_composite(
    endpoint: str,
    values: Annotated[str, typer.Argument(help='JSON object of absolute paths, e.g. {"/1/0/1": 300}')],
    server: ServerOpt = DEFAULT_SERVER,
    timeout: TimeoutOpt = None,
    as_json: JsonOpt = False,
    token: TokenOpt = None,
) -> None:  # fmt: skip
    """Write values of several objects of device ENDPOINT in one request (Write-Composite, LwM2M 1.1)."""
    try:
        body = json.loads(values)
    except ValueError as exc:
        raise CliError(f"VALUES is not JSON: {exc}") from None
    if not isinstance(body, dict) or not body:
        raise CliError('VALUES must be a JSON object like {"/1/0/1": 300}')
    data = request(server, "PUT", _device_url(endpoint, "composite"), params=_params(None, timeout),
                   json=body, timeout=_http_timeout(timeout), token=token)  # fmt: skip
    echo_json(data) if as_json else typer.echo(f"wrote {', '.join(data['paths'])} on {endpoint}")


@app.command("observe-composite")
def observe_composite(
    endpoint: str,
    paths: PathsArg,
    server: ServerOpt = DEFAULT_SERVER,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N notifications")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the observation running on exit")] = False,
    as_json: JsonOpt = False,
    token: TokenOpt = None,
) -> None:
    """Observe several PATHS of device ENDPOINT as one (Observe-Composite) until Ctrl-C (or --count N)."""
    url = _device_url(endpoint, "composite/observe")
    watch_notifications(
        server,
        endpoint,
        token=token,
        start=lambda: request(server, "POST", url, json={"paths": paths}, token=token),
        related=lambda data, initial: data.get("path") == "/" and data.get("paths") == initial["paths"],
        show_initial=lambda initial: _content_table(f"{endpoint} composite (observing)", initial["content"]),
        fmt_value=_fmt_value,
        stop=lambda: request(server, "DELETE", url, params=[("path", p) for p in paths], timeout=10.0, token=token),
        count=count,
        as_json=as_json,
        keep=keep,
    )


@app.command("data")
def sent_data(
    endpoint: str,
    server: ServerOpt = DEFAULT_SERVER,
    path: Annotated[str | None, typer.Option("--path", "-p", help="Only values at or below this path")] = None,
    since: Annotated[float | None, typer.Option("--since", help="Only values with a time >= this (epoch s)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    as_json: JsonOpt = False,
    token: TokenOpt = None,
) -> None:
    """Values device ENDPOINT pushed with Send (LwM2M 1.1), oldest first."""
    params: dict[str, Any] = {"limit": limit}
    if path is not None:
        params["path"] = path
    if since is not None:
        params["since"] = since
    data = request(server, "GET", _device_url(endpoint, "data"), params=params, token=token)
    if as_json:
        echo_json(data["items"])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{endpoint} sent values")
    for column in ("time", "path", "value"):
        table.add_column(column)
    for item in data["items"]:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item["ts"]))
        table.add_row(stamp, item["path"], _fmt_value(item["value"]))
    Console().print(table)
