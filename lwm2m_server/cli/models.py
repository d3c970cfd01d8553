"""``tinymlaas models list|upload|plan``: a thin client of ``/api/models``.

``plan NAME --ep EP`` / ``--filter F`` prints the fit report of each compile class the chosen devices fall in
(the server compiles once per class; nothing is deployed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.cli.http import DEFAULT_SERVER, JsonOpt, ServerOpt, TokenOpt, call, client, echo_json
from lwm2m_server.cli.units import FILTER_HELP, check_filter

models_app = typer.Typer(help="The model catalog: zoo and uploaded models, fit reports.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_(as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None) -> None:
    """Zoo models and uploaded models."""
    with client(server, token=token) as http:
        models = call(http, "GET", "/api/models")
    if as_json:
        echo_json(models)
        return
    from rich.console import Console

    from lwm2m_server.cli.tables import listing

    rows = [(m["name"], m["source"], m["kind"], m.get("version") or "", m.get("size") or "",
             ",".join(m.get("data_keys") or [])) for m in models]  # fmt: skip
    Console().print(listing(("name", "source", "kind", "version", "size", "data"), rows, keep=["name", "version"]))


@models_app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(help=".keras, .tflite or a zipped SavedModel (.zip)")],
    data: Annotated[Path | None, typer.Option("--data", help=".npz with rep_x, val_x, val_y (optional)")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Catalog name (default: the file's stem)")] = None,
    task: Annotated[str | None, typer.Option("--task", help="classification or autoencoder")] = None,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Upload a model (and its data) to the server's catalog."""
    files: dict[str, Any] = {}
    try:
        files["file"] = (file.name, file.read_bytes())
        if data is not None:
            files["data"] = (data.name, data.read_bytes())
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}", code=2) from exc
    form = {k: v for k, v in (("name", name), ("task", task)) if v}
    with client(server, timeout=600.0, token=token) as http:
        entry = call(http, "POST", "/api/models", files=files, data=form)
    if as_json:
        echo_json(entry)
    else:
        typer.echo(f"{entry['name']} version {entry['version']} ({entry['kind']}, {entry['size']} bytes)")


@models_app.command("plan")
def plan(
    name: Annotated[str, typer.Argument(help="Model name")],
    ep: Annotated[list[str] | None, typer.Option("--ep", help="Device endpoint (repeatable)")] = None,
    filter: Annotated[str | None, typer.Option("--filter", help=FILTER_HELP)] = None,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Fit report per compile class for the chosen devices (no deployment)."""
    if not ep and filter is None:
        raise CliError("give --ep ENDPOINT (repeatable) or --filter EXPRESSION", code=2)
    params: dict[str, Any] = {"ep": ep} if ep else {}
    if filter is not None:
        check_filter(filter)
        params["filter"] = filter
    with client(server, timeout=1800.0, token=token) as http:
        result = call(http, "POST", f"/api/models/{quote(name, safe='')}/plan", params=params)
    if as_json:
        echo_json(result)
        return
    from rich.console import Console

    from lwm2m_server.cli.tables import listing

    console = Console()
    console.print(f"{result['model']}: {result['devices']} device(s) in {len(result['classes'])} compile class(es)")
    for c in result["classes"]:
        name = c.get("class_name") or c["class_key"]
        console.print(f"\n[bold]class {name}[/bold] (id {c['class_key']}, {len(c['endpoints'])} devices): "
                      f"{c['summary']}", soft_wrap=True)
        if c["report"] is None:
            continue
        rows = []
        for v in c["report"]["variants"]:
            acc = f"{v['accuracy']:.4f}" if v["accuracy"] is not None else ""
            mark = "*" if v["variant"] == c["chosen"] else ""
            rows.append((v["variant"] + mark, v["size"], v["arena_bytes"], v["ram_bytes"], acc,
                         "yes" if v["fits"] else "no", v["reason"]))  # fmt: skip
        console.print(listing(("variant", "size", "arena", "RAM", "accuracy", "fits", "reason"), rows,
                              keep=["variant"]))  # fmt: skip
