"""``tinymlaas compile MODEL --ram 256KiB --flash 1MiB``: fit report for one compile class + the chosen package.

TensorFlow runs only in the spawned compile worker; this process imports the planner (no TF) lazily.
Exit codes: 0 a variant fits, 1 nothing fits (report still printed), 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.cli.units import SIZE_HELP

if TYPE_CHECKING:
    from compilers.report import FitReport
    from lwm2m_server.config import Settings


def _render(report: FitReport) -> None:
    from rich.console import Console
    from rich.table import Table

    t = report.target
    title = (
        f"{report.model} -> RAM {t.ram_bytes:,} B, flash {t.flash_bytes:,} B, "
        f"{'FPU' if t.fpu else 'no FPU'}, accelerator {t.accelerator}, {8 * t.pointer_size}-bit pointers"
    )
    table = Table(title=title)
    for col in (
        "variant",
        "backend",
        "size B",
        "deflate B",
        "arena B",
        "RAM need B",
        "accuracy",
        "latency µs",
        "verdict",
    ):
        table.add_column(col, justify="right" if col.endswith(("B", "accuracy", "µs")) else "left")
    for v in report.variants:
        mark = "✔ " if v.variant == report.chosen else ""
        table.add_row(
            mark + v.variant,
            v.backend,
            f"{v.size:,}",
            f"{v.compressed_size:,}",
            f"{v.arena_bytes:,}",
            f"{v.ram_bytes:,}",
            "-" if v.accuracy is None else f"{v.accuracy:.4f}",
            "-" if v.latency_us is None else f"{v.latency_us:,.1f}",
            v.reason,
            style=None if v.fits else "dim",
        )
    console = Console()
    if not console.is_terminal:
        console.width = 200  # piped output: keep one row per variant
    console.print(table)
    console.print(report.summary)
    for note in report.notes:
        console.print(f"note: {note}", style="dim")


def _write_package(report: FitReport, out: Path, settings: Settings, *, by_hash: bool = False) -> Path:
    """Write the chosen build as a bare .tflite and as a signed package (key from the secrets dir); ``by_hash`` adds
    the payload's sha256 prefix to the name (the cache's packages/ holds builds for many targets)."""
    import hashlib

    art = report.chosen_artifact
    assert art is not None
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{report.model}-{art.variant}" + (f"-{hashlib.sha256(art.data).hexdigest()[:12]}" if by_hash else "")
    (out / f"{stem}.tflite").write_bytes(art.data)
    from compilers.packaging import write_signed_package

    return write_signed_package(report, out / f"{stem}.pkg", settings.secrets_dir)


def _where(cache_root: Path, compiles: int, hits: int, package: Path | None, out: Path | None,
           settings: Settings) -> list[str]:
    """Lines saying where the compile cache and the package went (stderr: stdout stays the report)."""
    lines = [f"compile cache: {cache_root.resolve()} ({compiles} compiled, {hits} from the cache; "
             "shared with `tinymlaas serve` and `demo` by default)"]  # fmt: skip
    if package is not None:
        elsewhere = "" if out is not None else "; --out DIR puts it elsewhere"
        lines.append(f"package: {package.resolve()} ({package.stat().st_size:,} B, signed with the key in "
                     f"{settings.secrets_dir.resolve()}){elsewhere}")
    return lines


@app.command("compile")
def compile_model(
    model: Annotated[
        str, typer.Argument(help="zoo name (digits-cnn, vibration-anomaly) or a .keras/.tflite/SavedModel path")
    ],
    ram: Annotated[str, typer.Option("--ram", help="RAM free for the model; " + SIZE_HELP)],
    flash: Annotated[str, typer.Option("--flash", help="flash free for the package; " + SIZE_HELP)],
    fpu: Annotated[bool, typer.Option("--fpu/--no-fpu", help="the device has a floating-point unit")] = True,
    accelerator: Annotated[
        str, typer.Option("--accelerator", help="none or ethos-u55-32..256, ethos-u65-256/512")
    ] = "none",
    out: Annotated[Path | None, typer.Option("--out", help="directory for the chosen package (default: the "
                                                           "compile cache's packages/)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the fit report as one JSON object")] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help=".npz with representative [, val_x, val_y, train_x, train_y] for .keras/SavedModel"
        ),
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="classification or autoencoder (accuracy metric)")] = None,
    clock_mhz: Annotated[float | None, typer.Option("--clock-mhz", help="NPU clock for the latency estimate")] = None,
    pointer_size: Annotated[
        int | None, typer.Option("--pointer-size", help="4 (32-bit MCU) or 8 (64-bit host runtime, default)")
    ] = None,
    cpu: Annotated[
        str | None, typer.Option("--cpu", help="CPU core (cortex-m4f, rv32imc...): derives --pointer-size")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="compile cache (default from config)")] = None,
) -> None:
    """Compile MODEL for one device class, print the fit report and write the chosen package."""
    from compilers.target import Target, pointer_size_for_cpu
    from lwm2m_server.cli.units import read_size
    from lwm2m_server.config import ConfigError, load_settings
    from lwm2m_server.logging import configure_logging

    try:
        derived = pointer_size_for_cpu(cpu) if cpu is not None else None
        if derived is not None and pointer_size is not None and derived != pointer_size:
            raise ValueError(f"--cpu {cpu} has {derived}-byte pointers, not --pointer-size {pointer_size}")
        width = pointer_size or derived or 8
        target = Target(read_size(ram, "--ram"), read_size(flash, "--flash"), fpu=fpu, accelerator=accelerator,
                        pointer_size=width)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    configure_logging("warning", "json")  # logs to stderr; stdout stays the report

    from compilers.base import CompileError
    from compilers.cache import CompileCache
    from compilers.planner import CompileRunner, PlanOptions, load_data, plan, resolve_source
    from compilers.tflite_info import ModelKindError
    from compilers.worker import make_executor

    cache = CompileCache(cache_dir or settings.compile_cache_dir)
    options = PlanOptions(
        accuracy_margin=settings.compile.accuracy_margin,
        flash_margin_bytes=settings.compile.flash_margin_bytes,
        runtime_overhead_bytes=settings.compile.runtime_overhead_bytes,
        clock_mhz=clock_mhz,
    )
    runner = CompileRunner(cache, lambda: make_executor(1))
    try:
        source = resolve_source(model, cache.root / "zoo")
        if data is not None or task is not None:
            source = load_data(source, data, task) if data is not None else source
            if task is not None and data is None:
                raise ValueError("--task needs --data (held-out arrays to score on)")
        report = plan(source, target, cache=cache, options=options, runner=runner)
    except (ValueError, ModelKindError, CompileError, OSError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        runner.shutdown()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _render(report)
    package = None
    if report.chosen is not None:
        package = _write_package(report, out if out is not None else cache.root / "packages", settings,
                                 by_hash=out is None)
    for line in _where(cache.root, runner.compiles, runner.cache_hits, package, out, settings):
        typer.echo(line, err=True)
    if report.chosen is None:
        raise typer.Exit(1)
