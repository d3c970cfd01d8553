"""``tinymlaas update EP (--model NAME | --package FILE | --firmware FILE)``: one device's OTA, watched live.

A REST client of a running server: uploads the file (if any), starts the job, then follows
``GET /api/devices/{ep}/update`` with a progress bar (bytes sent or served, and the job/Object 5 state).
Exit 0 only on a confirmed install; 1 with the cause (Update Result name, timeout, not fitting) otherwise;
2 for usage errors.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.cli.http import DEFAULT_SERVER, ServerOpt, TokenOpt, call
from lwm2m_server.cli.http import client as http_client

if TYPE_CHECKING:
    import httpx

TERMINAL = {"succeeded", "failed", "cancelled"}
FW_STATES = {0: "idle", 1: "downloading", 2: "downloaded", 3: "updating"}


def _label(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    fw = FW_STATES.get(int(progress.get("fw_state") or 0), "?") if progress.get("fw_state") is not None else "?"
    attempt = f" attempt {job['attempt']}" if job.get("attempt", 1) > 1 else ""
    blocks = f" {progress['blocks']} blocks sent" if progress.get("blocks") else ""
    return f"{job.get('method') or ''} {job['phase']} (device: {fw}){blocks}{attempt}".strip()


@app.command()
def update(
    endpoint: Annotated[str, typer.Argument(help="Device endpoint name")],
    model: Annotated[str | None, typer.Option("--model", help="Zoo model compiled for this device's class")] = None,
    package: Annotated[Path | None, typer.Option("--package", help="A signed model package file")] = None,
    firmware: Annotated[Path | None, typer.Option("--firmware", help="A plain firmware image (opaque)")] = None,
    method: Annotated[str | None, typer.Option("--method", help="push or pull (default: the server's choice)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final job as JSON, no progress bar")] = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
    wait: Annotated[float, typer.Option("--wait", help="Give up watching after this many seconds")] = 1800.0,
) -> None:
    """Install a model or firmware on one device over the air and wait for a confirmed install."""
    if sum(x is not None for x in (model, package, firmware)) != 1:
        raise CliError("give exactly one of --model, --package or --firmware", code=2)
    if method not in (None, "push", "pull"):
        raise CliError("--method must be push or pull", code=2)
    ep_url = f"/api/devices/{quote(endpoint, safe='')}/update"
    with http_client(server, 600.0, token=token) as client:
        body: dict[str, Any] = {"method": method} if method else {}
        if model is not None:
            body["model"] = model
        else:
            path = package or firmware
            assert path is not None
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CliError(f"cannot read {path}: {exc}", code=2) from exc
            kind = "model" if package is not None else "firmware"
            info = call(client, "POST", "/api/packages", params={"kind": kind, "name": path.name},
                            content=data, headers={"content-type": "application/octet-stream"})  # fmt: skip
            body["package" if kind == "model" else "firmware"] = info["sha256"]
        started = call(client, "POST", ep_url, json=body)
        job = _watch(client, ep_url, started["job"], wait, quiet=as_json)
    if as_json:
        typer.echo(json.dumps(job, indent=2))
    if job["phase"] != "succeeded":
        detail = f": {job['detail']}" if job.get("detail") else ""
        raise CliError(f"update {job['phase']}: {job.get('summary', '')}{detail}", code=1)
    if not as_json:
        typer.echo(f"{endpoint}: installed and confirmed ({job['package_sha256'][:16]}, {job.get('method')})")


def _watch(client: httpx.Client, url: str, job_id: str, wait: float, *, quiet: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + wait
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=quiet, transient=False) as bar:
        task = bar.add_task("queued", total=None)
        while True:
            status = call(client, "GET", url)
            job = status.get("job") or {}
            if job.get("id") != job_id:
                raise CliError(f"job {job_id} is no longer the device's latest job", code=1)
            progress = job.get("progress") or {}
            bar.update(task, description=_label(job), completed=progress.get("bytes", 0),
                       total=progress.get("total") or None)  # fmt: skip
            if job["phase"] in TERMINAL:
                return dict(job)
            if time.monotonic() > deadline:
                raise CliError(f"still {job['phase']} after {wait:.0f}s (job {job_id} keeps running)", code=1)
            time.sleep(0.5)
