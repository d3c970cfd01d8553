"""``tinymlaas demo``: server + simulated fleet + compile + rollout, with live progress and a summary table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lwm2m_server.cli.app import CliError, app


class RichDemoUI:
    """Stages as lines, fit reports as tables, the rollout as live progress bars per wave and per class."""

    def __init__(self) -> None:
        from rich.console import Console

        console = Console()
        # Not a terminal (CI logs, pipes): rich would wrap the tables at 80 columns.
        self.console = console if console.is_terminal else Console(width=140)
        self._live: Any = None
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def stage(self, text: str) -> None:
        self.console.print(f"[bold cyan]▶[/] {text}")

    def fit_reports(self, classes: list[dict[str, Any]]) -> None:
        from rich.table import Table

        for c in classes:
            title = f"compile class {c.get('class_name') or c['class_key']} — {c['label']} ({c['devices']} devices)"
            table = Table(title=title, title_justify="left", show_lines=False)
            for col in ("variant", "size B", "deflate B", "arena B", "RAM need B", "accuracy", "latency µs", "verdict"):
                table.add_column(col, justify="left" if col in ("variant", "verdict") else "right")
            for v in (c["report"] or {}).get("variants", []):
                mark = "✔ " if v["variant"] == c["chosen"] else "  "
                table.add_row(
                    mark + v["variant"], f"{v['size']:,}", f"{v['compressed_size']:,}", f"{v['arena_bytes']:,}",
                    f"{v['ram_bytes']:,}", "-" if v["accuracy"] is None else f"{v['accuracy']:.4f}",
                    "-" if v["latency_us"] is None else f"{v['latency_us']:,.0f}", v["reason"],
                )
            self.console.print(table)
            self.console.print(f"  → {c['summary']}")

    def progress(self, status: dict[str, Any], labels: dict[str, str]) -> None:
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        if self._progress is None:
            self._progress = Progress(TextColumn("{task.description:<42}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[detail]}"), console=self.console)
            self._live = Live(self._progress, console=self.console, refresh_per_second=8, transient=False)
            self._live.start()
        done_states = ("confirmed", "incompatible", "failed", "skipped", "cancelled")
        rows = [(f"wave {w['wave']}", w["counts"]) for w in status["waves"]]
        rows += [(f"class {labels.get(c['class_key'], c['class_key'])[:34]}", c["counts"]) for c in status["classes"]]
        for name, counts in rows:
            total = sum(counts.values())
            done = sum(counts.get(s, 0) for s in done_states)
            detail = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
            if name not in self._tasks:
                self._tasks[name] = self._progress.add_task(name, total=total, detail=detail)
            self._progress.update(self._tasks[name], completed=done, total=total, detail=detail)
        if status["state"] not in ("created", "running") and self._live is not None:
            self._live.stop()
            self._live = None

    def done(self, summary: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table(title=f"rollout {summary['rollout']}: {summary['state']} in {summary['wall_s']} s",
                      title_justify="left")
        for col in ("class", "variant", "size B", "arena B", "accuracy", "confirmed", "incompatible", "failed"):
            table.add_column(col, justify="left" if col in ("class", "variant") else "right")
        for c in summary["classes"]:
            table.add_row(
                c["target"], c["variant"] or f"— ({c['reason']})", _n(c["size"]), _n(c["arena_bytes"]),
                "-" if c["accuracy"] is None else f"{c['accuracy']:.4f}", str(c["confirmed"]),
                str(c["incompatible"]), str(c["failed"]),
            )
        t = summary["totals"]
        table.add_section()
        table.add_row(f"all {summary['devices']} devices", "", "", "", "", str(t["confirmed"]),
                      str(t["incompatible"]), str(t["failed"]))
        self.console.print(table)
        self.console.print(f"OTA jobs that needed a retry: {summary['ota_retries']}")
        if summary.get("reason"):
            self.console.print(f"rollout note: {summary['reason']}")
        for f in summary.get("failures", []):
            self.console.print(f"[red]✘[/] {f['endpoint']}: {f['state']} ({f['cause']})")


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


class QuietUI:
    def stage(self, text: str) -> None: ...
    def fit_reports(self, classes: list[dict[str, Any]]) -> None: ...
    def progress(self, status: dict[str, Any], labels: dict[str, str]) -> None: ...
    def done(self, summary: dict[str, Any]) -> None: ...


@app.command()
def demo(
    devices: Annotated[int, typer.Option("--devices", "-n", min=1, max=2000, help="simulated devices")] = 60,
    model: Annotated[str, typer.Option("--model", help="zoo model to roll out")] = "digits-cnn",
    fleet: Annotated[Path | None, typer.Option("--fleet", help="fleet profile TOML")] = None,
    waves: Annotated[str, typer.Option("--waves", help="e.g. 10%,50%,100%")] = "10%,50%,100%",
    keep_running: Annotated[bool, typer.Option("--keep-running", help="keep the server up to explore the API")] = False,
    http_port: Annotated[int, typer.Option("--http-port", help="HTTP API port (0 = any free port)")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="print only the JSON summary")] = False,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="compile cache directory")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="zoo training epochs (default: the model's)")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="give up after this many seconds")] = 300.0,
) -> None:
    """Run the whole system once: server, simulated fleet, per-class compile, rollout in waves, summary."""
    import asyncio

    from lwm2m_server.demo import DEFAULT_FLEET, DemoError, DemoOptions, run_demo
    from lwm2m_server.logging import configure_logging
    from lwm2m_server.rollouts.waves import WaveSpecError, parse_waves

    try:
        parse_waves(waves)
    except WaveSpecError as exc:
        raise CliError(f"--waves: {exc}") from exc
    fleet_file = fleet or DEFAULT_FLEET
    if not fleet_file.exists():
        raise CliError(f"fleet file not found: {fleet_file}")
    configure_logging("error", "console")
    opts = DemoOptions(devices=devices, model=model, fleet_file=fleet_file, waves=waves, keep_running=keep_running,
                       http_port=http_port, cache_dir=cache_dir, zoo_epochs=epochs, timeout_s=timeout)
    ui: Any = QuietUI() if json_out else RichDemoUI()
    try:
        summary = asyncio.run(run_demo(opts, ui))
    except KeyboardInterrupt:
        raise CliError("interrupted", code=130) from None
    except DemoError as exc:
        raise CliError(str(exc), code=1) from exc
    if json_out:
        keys = ("devices", "wall_s", "totals", "classes")
        out = {k: summary[k] for k in keys}
        out["classes"] = [{k: c[k] for k in ("target", "variant", "size", "arena_bytes", "accuracy", "confirmed",
                                             "incompatible", "failed")} for c in summary["classes"]]
        typer.echo(json.dumps(out))
    if summary["totals"]["failed"]:
        raise typer.Exit(1)
