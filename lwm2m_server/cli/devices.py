"""Thin REST clients: ``tinymlaas devices | device | read | write | exec | observe``.

They talk to a running server's HTTP API (``--server``, default ``$TINYMLAAS_SERVER`` or
http://127.0.0.1:8080). Tables by default, JSON with ``--json``. Exit codes: 2 for a bad request
(usage: bad path, format or value), 1 for a remote failure (unreachable server, unknown device,
device error or timeout).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from lwm2m_server.cli.app import app
from lwm2m_server.cli.http import DEFAULT_SERVER, ServerOpt, TokenOpt, echo_json, request, watch_notifications
from lwm2m_server.cli.units import SIZE_HELP, read_optional_size

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="Content format: tlv, senml-cbor, text, ...")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Device timeout in seconds")]


def _device_url(endpoint: str, path: str) -> str:
    from urllib.parse import quote

    base = f"/api/devices/{quote(endpoint, safe='')}"
    return f"{base}/{path.strip('/')}" if path.strip("/") else base


def _params(fmt: str | None, timeout: float | None, **extra: Any) -> dict[str, Any]:
    params = {k: v for k, v in extra.items() if v is not None}
    if fmt is not None:
        params["format"] = fmt
    if timeout is not None:
        params["timeout"] = timeout
    return params


def _http_timeout(timeout: float | None) -> float:
    return (timeout or 60.0) + 10.0


def _fmt_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _content_table(title: str, content: dict[str, Any], key: str = "path") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column(key)
    table.add_column("value")
    for path, value in content.items():
        table.add_row(path, _fmt_value(value))
    Console().print(table)


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


# ---- commands -----------------------------------------------------------------------------------------
@app.command()
def devices(
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
    accelerator: Annotated[str | None, typer.Option(help='e.g. "none", "ethos-u55-128"')] = None,
    cpu: Annotated[str | None, typer.Option(help="CPU core, e.g. cortex-m4f")] = None,
    runtime: Annotated[str | None, typer.Option()] = None,
    min_ram: Annotated[str | None, typer.Option(help="RAM total >= this " + SIZE_HELP)] = None,
    min_ram_free: Annotated[str | None, typer.Option(help="RAM free for ML >= this " + SIZE_HELP)] = None,
    min_flash: Annotated[str | None, typer.Option(help="Flash total >= this " + SIZE_HELP)] = None,
    min_flash_free: Annotated[str | None, typer.Option(help="Flash free for models >= this " + SIZE_HELP)] = None,
    fpu: Annotated[bool | None, typer.Option("--fpu/--no-fpu", help="Only devices with / without an FPU")] = None,
    online: Annotated[bool | None, typer.Option("--online/--sleeping", help="Awake or asleep devices")] = None,
    prefix: Annotated[str | None, typer.Option(help="Endpoint name prefix")] = None,
    lwm2m_version: Annotated[str | None, typer.Option("--lwm2m-version")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List registered devices (filters on the hardware profile, paging)."""
    sizes = {name: read_optional_size(value, "--" + name.replace("_", "-")) for name, value in (
        ("min_ram", min_ram), ("min_ram_free", min_ram_free), ("min_flash", min_flash),
        ("min_flash_free", min_flash_free))}  # fmt: skip
    params = _params(None, None, accelerator=accelerator, cpu=cpu, runtime=runtime, prefix=prefix,
                     lwm2m_version=lwm2m_version, limit=limit, offset=offset, **sizes)
    if fpu is not None:
        params["fpu"] = str(fpu).lower()
    if online is not None:
        params["online"] = str(online).lower()
    data = request(server, "GET", "/api/devices", token=token, params=params)
    if as_json:
        echo_json(data)
        return
    from rich.console import Console

    from lwm2m_server.cli.tables import listing

    title = f"{data['total']} device(s)" + (f", showing {offset + 1}-{offset + len(data['items'])}"
                                            if data["items"] else "")
    now = time.time()
    rows = []
    for item in data["items"]:
        prof = item.get("profile") or {}
        rows.append((item["endpoint"], item["lwm2m_version"], "sleeping" if item["sleeping"] else "online",
                     prof.get("cpu") or "-", prof.get("accelerator") or "-", _size(prof.get("ram_total")),
                     _size(prof.get("ram_free_ml")), _size(prof.get("flash_total")),
                     f"{max(0.0, now - item['last_seen']):.0f} s ago"))  # fmt: skip
    columns = ("endpoint", "lwm2m", "state", "cpu", "accelerator", "ram", "ram for ML", "flash", "last seen")
    Console().print(listing(columns, rows, keep=["endpoint"], title=title))


@app.command()
def device(endpoint: str, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Show one device: registration, profile, online/sleeping."""
    data = request(server, "GET", _device_url(endpoint, ""), token=token)
    if as_json:
        echo_json(data)
        return
    profile = data.pop("profile", None) or {}
    flat = {k: v for k, v in data.items() if k not in ("objects", "instances")}
    flat["instances"] = " ".join(data.get("instances", []))
    for stamp in ("registered_at", "updated_at", "last_seen"):
        if isinstance(flat.get(stamp), int | float):
            flat[stamp] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(flat[stamp]))
    flat.update({f"profile.{k}": v for k, v in profile.items()})
    _content_table(endpoint, flat, key="field")


@app.command()
def read(endpoint: str, path: str, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None, fmt: FormatOpt = None,
         timeout: TimeoutOpt = None, as_json: JsonOpt = False) -> None:
    """Read PATH (/3/0, /3/0/1, ...) from device ENDPOINT; --json prints the path -> value mapping."""
    data = request(server, "GET", _device_url(endpoint, path), token=token, params=_params(fmt, timeout),
                 timeout=_http_timeout(timeout))
    if as_json:
        echo_json(data["content"])
        return
    from rich.console import Console
    from rich.table import Table

    title = f"{endpoint} {data['path']}" + (f" ({data['object_name']})" if data.get("object_name") else "")
    table = Table(title=title)
    table.add_column("path", no_wrap=True)
    table.add_column("resource")
    table.add_column("value", overflow="fold")
    table.add_column("units")
    info = data.get("resources") or {}
    for leaf, value in data["content"].items():
        meta = info.get(leaf) or {}
        table.add_row(leaf, meta.get("name", ""), _fmt_value(value), meta.get("units", ""))
    Console().print(table)


def _parse_value(raw: str, as_string: bool) -> Any:
    if as_string:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@app.command()
def write(
    endpoint: str,
    path: str,
    value: Annotated[str, typer.Argument(help='JSON value (300, true, "text", {"hex": "00ff"}, "3:0") or a '
                                             'JSON object {"1": 300} for an instance; non-JSON is sent as a string')],
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
    fmt: FormatOpt = None,
    timeout: TimeoutOpt = None,
    partial: Annotated[bool, typer.Option("--partial", help="Partial update of an instance")] = False,
    as_string: Annotated[bool, typer.Option("--string", "-s", help="Send VALUE as a string, never as JSON")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write VALUE to PATH on device ENDPOINT."""
    body = json.dumps(_parse_value(value, as_string))
    params = _params(fmt, timeout, partial="true" if partial else None)
    data = request(server, "PUT", _device_url(endpoint, path), token=token, params=params, content=body,
                 headers={"content-type": "application/json"}, timeout=_http_timeout(timeout))
    echo_json(data) if as_json else typer.echo(f"wrote {data['path']} on {endpoint}")


@app.command("exec")
def execute(
    endpoint: str,
    path: str,
    args: Annotated[str, typer.Argument(help="Execute arguments, e.g. 0='v',1")] = "",
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
    timeout: TimeoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Execute resource PATH on device ENDPOINT."""
    data = request(server, "POST", _device_url(endpoint, path), token=token,
                   params=_params(None, timeout), content=args,
                 headers={"content-type": "text/plain"}, timeout=_http_timeout(timeout))
    echo_json(data) if as_json else typer.echo(f"executed {data['path']} on {endpoint}")


def _related(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


@app.command()
def observe(
    endpoint: str,
    path: str,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
    count: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Stop after N notifications")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the observation running on exit")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Observe PATH on device ENDPOINT and print notifications until Ctrl-C (or --count N)."""
    url = _device_url(endpoint, path) + "/observe"
    watch_notifications(
        server,
        endpoint,
        token=token,
        start=lambda: request(server, "POST", url, token=token),
        related=lambda data, initial: _related(str(data.get("path", path)), initial["path"]),
        show_initial=lambda initial: _content_table(f"{endpoint} {initial['path']} (observing)", initial["content"]),
        fmt_value=_fmt_value,
        stop=lambda: request(server, "DELETE", url, token=token, timeout=10.0),
        count=count,
        as_json=as_json,
        keep=keep,
    )
