"""``tinymlaas rollout create|status|list|pause|resume|cancel|retry``: a thin client of ``/api/rollouts``.

``status --watch`` polls the rollout and draws one progress bar per wave and per compile class (rich) until the
rollout is completed, cancelled, failed or paused. Exit codes: 0 ok, 2 usage or invalid request, 1 remote
failure (unreachable server, unknown rollout, refused action, rollout that did not complete).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.cli.http import DEFAULT_SERVER, JsonOpt, ServerOpt, TokenOpt, call, client, echo_json
from lwm2m_server.cli.units import FILTER_HELP, check_filter

if TYPE_CHECKING:
    import httpx

rollout_app = typer.Typer(help="Fleet rollouts: create, watch and control.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")

IdArg = Annotated[str, typer.Argument(help="Rollout id")]
TERMINAL = {"confirmed", "failed", "incompatible", "skipped", "cancelled"}
DONE = {"completed", "cancelled", "failed"}


def _rid(rollout_id: str) -> str:
    return f"/api/rollouts/{quote(rollout_id, safe='')}"


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no devices"


# ---- commands ------------------------------------------------------------------------------------------
@rollout_app.command("create")
def create(
    model: Annotated[str, typer.Option("--model", "-m", help="Zoo or uploaded model name")],
    filter: Annotated[str, typer.Option("--filter", help=FILTER_HELP)] = "",
    waves: Annotated[str, typer.Option("--waves", help="10%,50%,100% | 5,20 | equal:4")] = "100%",
    max_concurrency: Annotated[int, typer.Option("--max-concurrency", help="Devices updating at once")] = 50,
    rate: Annotated[float, typer.Option("--rate", help="Devices started per minute (0 = no cap)")] = 0.0,
    canary: Annotated[list[str] | None, typer.Option("--canary", help="Canary endpoint (repeatable)")] = None,
    endpoint: Annotated[list[str] | None, typer.Option("--endpoint", help="Only these endpoints (repeatable)")] = None,
    success_threshold: Annotated[float, typer.Option("--success-threshold", help="Percent of a wave to pass")] = 100.0,
    error_threshold: Annotated[float, typer.Option("--error-threshold", help="Percent failed that pauses")] = 20.0,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Per-device timeout (s)")] = None,
    retries: Annotated[int | None, typer.Option("--retries", help="Per-device OTA retries")] = None,
    name: Annotated[str, typer.Option("--name", help="A label for the rollout")] = "",
    dynamic: Annotated[bool, typer.Option("--dynamic", help="Devices registering later join")] = False,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Create it even if no device matches now "
                                                                    "(refused otherwise)")] = False,
    start: Annotated[bool, typer.Option("--start", help="Start at once")] = False,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Create a rollout of MODEL to the devices matching --filter, in waves."""
    body: dict[str, Any] = {
        "model": model, "filter": filter, "waves": waves, "max_concurrency": max_concurrency,
        "rate_per_minute": rate, "canaries": canary or [], "success_threshold_pct": success_threshold,
        "error_threshold_pct": error_threshold, "name": name, "dynamic": dynamic, "start": start,
        "allow_empty": allow_empty,
    }  # fmt: skip
    check_filter(filter)
    if endpoint:
        body["endpoints"] = endpoint
    if timeout is not None:
        body["device_timeout_s"] = timeout
    if retries is not None:
        body["max_retries"] = retries
    with client(server, token=token) as http:
        rollout = call(http, "POST", "/api/rollouts", json=body)
    if as_json:
        echo_json(rollout)
        return
    typer.echo(f"rollout {rollout['id']} {rollout['state']}: {rollout['total']} devices in {rollout['wave_count']} "
               f"wave(s), model {model}")  # fmt: skip


@rollout_app.command("list")
def list_(as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None) -> None:
    """Every rollout with its state and wave."""
    with client(server, token=token) as http:
        rollouts = call(http, "GET", "/api/rollouts")
    if as_json:
        echo_json(rollouts)
        return
    from rich.console import Console

    from lwm2m_server.cli.tables import listing

    rows = [(r["id"], r["state"], f"{min(r['current_wave'] + 1, r['wave_count'])}/{r['wave_count']}",
             r["spec"]["model"], r["spec"]["filter"] or "(all)", r["reason"] or "") for r in rollouts]  # fmt: skip
    Console().print(listing(("id", "state", "wave", "model", "filter", "reason"), rows, keep=["id"]))


def _action(action: str, rollout_id: str, as_json: bool, server: str, token: str | None) -> None:
    with client(server, token=token) as http:
        rollout = call(http, "POST", f"{_rid(rollout_id)}/{action}")
    if as_json:
        echo_json(rollout)
    else:
        typer.echo(f"rollout {rollout['id']}: {rollout['state']}")


@rollout_app.command("start")
def start_(
    rollout_id: IdArg, as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None,
) -> None:
    """Start a created rollout."""
    _action("start", rollout_id, as_json, server, token)


@rollout_app.command("pause")
def pause(
    rollout_id: IdArg, as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None,
) -> None:
    """Pause: in-flight devices finish, no new ones start."""
    _action("pause", rollout_id, as_json, server, token)


@rollout_app.command("resume")
def resume(
    rollout_id: IdArg, as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None,
) -> None:
    """Resume a paused rollout."""
    _action("resume", rollout_id, as_json, server, token)


@rollout_app.command("cancel")
def cancel(
    rollout_id: IdArg, as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None,
) -> None:
    """Cancel the rollout and the in-flight device updates."""
    _action("cancel", rollout_id, as_json, server, token)


@rollout_app.command("retry")
def retry(
    rollout_id: IdArg, as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None,
) -> None:
    """Put failed devices back to pending and run again."""
    _action("retry", rollout_id, as_json, server, token)


@rollout_app.command("status")
def status(
    rollout_id: IdArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Live progress until the rollout stops")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls")] = 0.5,
    wait: Annotated[float, typer.Option("--wait", help="Give up watching after this many seconds")] = 3600.0,
    devices: Annotated[int, typer.Option("--devices", help="Devices to list (0 = none)")] = 0,
    as_json: JsonOpt = False,
    server: ServerOpt = DEFAULT_SERVER,
    token: TokenOpt = None,
) -> None:
    """Counts by state, wave and compile class; --watch draws live bars per wave and class."""
    with client(server, token=token) as http:
        url = _rid(rollout_id)
        if watch:
            data = _watch(http, url, interval, wait, quiet=as_json)
        data = call(http, "GET", url, params={"limit": devices})
    if as_json:
        echo_json(data)
    else:
        _print(data)
    if watch and data["state"] != "completed":
        raise CliError(f"rollout {data['id']} {data['state']}" + (f": {data['reason']}" if data["reason"] else ""),
                       code=1)  # fmt: skip


def _print(data: dict[str, Any]) -> None:
    from rich.console import Console

    from lwm2m_server.cli.tables import listing

    console = Console()
    reason = f" ({data['reason']})" if data["reason"] else ""
    console.print(f"rollout {data['id']} [bold]{data['state']}[/bold]{reason}: model {data['spec']['model']}, "
                  f"wave {min(data['current_wave'] + 1, data['wave_count'])}/{data['wave_count']}, "
                  f"{data['total']} devices: {_counts(data['counts'])}")  # fmt: skip
    rows: list[tuple[Any, ...]] = []
    for c in data["classes"]:
        acc = f"{c['accuracy']:.4f}" if c.get("accuracy") is not None else ""
        rows.append((c.get("class_name") or c["class_key"], c.get("variant") or "", c.get("size") or "",
                     c.get("arena_bytes") or "", acc, _counts(c["counts"]), c.get("reason") or ""))  # fmt: skip
    console.print(listing(("class", "variant", "size", "arena", "accuracy", "devices", "reason"), rows,
                          keep=["class"], title="compile classes"))  # fmt: skip
    if data["devices"]:
        names = {c["class_key"]: c.get("class_name") or c["class_key"] for c in data["classes"]}
        rows = [(d["endpoint"], d["wave"] + 1, names.get(d.get("class_key") or "unknown", d.get("class_key") or ""),
                 d["state"], d["attempts"], d["cause"] or "") for d in data["devices"]]  # fmt: skip
        console.print(listing(("endpoint", "wave", "class", "state", "attempts", "cause"), rows,
                              keep=["endpoint", "class"]))  # fmt: skip


def _watch(http: httpx.Client, url: str, interval: float, wait: float, *, quiet: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + wait
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
               TimeElapsedColumn())  # fmt: skip
    bars: dict[str, Any] = {}
    with Progress(*columns, disable=quiet) as progress:
        while True:
            data: dict[str, Any] = call(http, "GET", url, params={"limit": 0})
            rows = [(f"wave {w['wave'] + 1}", w["counts"]) for w in data["waves"]]
            rows += [(f"class {c.get('class_name') or c['class_key']} {c.get('variant') or ''}".rstrip(), c["counts"])
                     for c in data["classes"]]  # fmt: skip
            for label, counts in rows:
                if label not in bars:
                    bars[label] = progress.add_task(label, total=None, detail="")
                done = sum(n for s, n in counts.items() if s in TERMINAL)
                progress.update(bars[label], completed=done, total=sum(counts.values()) or None,
                                detail=_counts(counts))  # fmt: skip
            if data["state"] in DONE or data["state"] == "paused":
                return data
            if time.monotonic() > deadline:
                raise CliError(f"still {data['state']} after {wait:.0f}s (the rollout keeps running)", code=1)
            time.sleep(interval)
