"""``tinymlaas sim``: run a simulated fleet against any LwM2M server until Ctrl-C, then de-register cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lwm2m_server.cli.app import CliError, app


def load_public_key(value: str) -> bytes:
    """A raw 32-byte Ed25519 public key from hex text, a file of 32 raw bytes, hex, or PEM."""
    text = value.strip()
    path = Path(text)
    if path.is_file():
        data = path.read_bytes()
        if len(data) == 32:
            return data
        if data.lstrip().startswith(b"-----BEGIN"):
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            key = serialization.load_pem_public_key(data)
            if not isinstance(key, Ed25519PublicKey):
                raise CliError(f"{value}: not an Ed25519 public key")
            return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        text = data.decode("ascii", errors="replace").strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise CliError(f"--public-key: {value!r} is neither a key file nor 64 hex digits") from None
    if len(raw) != 32:
        raise CliError(f"--public-key: expected 32 bytes, got {len(raw)}")
    return raw


@app.command()
def sim(
    server: Annotated[str, typer.Option("--server", "-s", help="LwM2M server URI")] = "coap://127.0.0.1:5683",
    fleet: Annotated[
        Path | None,
        typer.Option("--fleet", "-f", "--profiles", help="fleet profile file (TOML); default: the bundled demo fleet"),
    ] = None,
    devices: Annotated[int | None, typer.Option("--devices", "-n", min=1, help="scale the mix to N devices")] = None,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="server's Ed25519 package key (hex or file)")
    ] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="endpoint name prefix")] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="stop after this many seconds")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="debug|info|warning|error")] = "warning",
    psk_csv: Annotated[Path | None, typer.Option(
        "--psk-csv", help="endpoint,identity,key_hex per device (the file `credentials import` takes); "
        "needed for a coaps:// server (with --bootstrap coaps://: the factory bootstrap keys)")] = None,
    bootstrap: Annotated[str | None, typer.Option(
        "--bootstrap", help="start every device from this bootstrap server (coap:// or coaps://) instead of "
        "--server: it writes each device's server URI and credentials")] = None,
) -> None:
    """Run a simulated fleet until Ctrl-C (or --duration), then de-register every device."""
    if not server.startswith(("coap://", "coaps://")):
        raise CliError(f"--server must be a coap:// or coaps:// URI, got {server!r}")
    if bootstrap is not None and not bootstrap.startswith(("coap://", "coaps://")):
        raise CliError(f"--bootstrap must be a coap:// or coaps:// URI, got {bootstrap!r}")
    first = bootstrap or server
    if first.startswith("coaps://") and psk_csv is None:
        what = "factory bootstrap" if bootstrap else "each device's"
        raise CliError(f"a coaps:// {'bootstrap ' if bootstrap else ''}server needs --psk-csv with {what} "
                       "identity and key")
    if fleet is None:
        from lwm2m_server.resources import DEFAULT_FLEET

        fleet = DEFAULT_FLEET
    if not fleet.is_file():
        raise CliError(f"fleet file not found: {fleet}")
    key = load_public_key(public_key) if public_key else None
    from lwm2m_server.logging import configure_logging
    from simulator.fleet import Fleet, FleetFileError

    try:
        configure_logging(log_level)
    except ValueError as exc:
        raise CliError(str(exc)) from exc

    try:
        the_fleet = Fleet.from_toml(fleet, server, devices, server_public_key=key, endpoint_prefix=prefix,
                                    bootstrap_uri=bootstrap)
    except FleetFileError as exc:
        raise CliError(str(exc)) from exc
    if psk_csv is not None:
        _apply_psk(the_fleet, psk_csv)
    asyncio.run(_run(the_fleet, duration))


def _apply_psk(fleet: Any, csv_file: Path) -> None:
    """Give every device its identity and key from the CSV; every device must have a line."""
    from dataclasses import replace

    from lwm2m_server.protocol.security import CredentialError
    from simulator.dtls import load_psk_csv

    try:
        creds = load_psk_csv(csv_file)
    except (OSError, UnicodeDecodeError, CredentialError) as exc:
        raise CliError(f"--psk-csv {csv_file}: {exc}") from exc
    missing = [d.endpoint for d in fleet.devices if d.endpoint not in creds]
    if missing:
        raise CliError(f"--psk-csv {csv_file}: no line for {len(missing)} devices, e.g. {missing[0]!r}")
    for device in fleet.devices:
        identity, key = creds[device.endpoint]
        device.config = replace(device.config, psk_identity=identity, psk_key=key)


async def _run(fleet: Any, duration: float | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    target = f"bootstrap {fleet.bootstrap_uri}" if fleet.bootstrap_uri else fleet.server_uri
    console.print(f"starting {len(fleet.devices)} devices against {target} ...")
    starter = asyncio.create_task(fleet.start(wait_registered=60.0))
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({starter, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if starter.done():
        console.print(
            f"{fleet.registered}/{len(fleet.devices)} registered in {time.monotonic() - started:.1f} s; "
            + ("Ctrl-C to stop" if duration is None else f"running for {duration:g} s")
        )
        for endpoint, why in fleet.failed:
            console.print(f"[red]failed to start {endpoint}: {why}")
        table = Table("profile", "devices", "registered", "LwM2M/binding")
        for row in fleet.summary():
            kinds = ", ".join(f"{k} x{v}" for k, v in sorted(row["kinds"].items()))
            table.add_row(row["profile"], str(row["devices"]), str(row["registered"]), kinds)
        console.print(table)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    else:
        starter.cancel()
    waiter.cancel()
    console.print("stopping: de-registering ...")
    await fleet.stop()
    console.print(f"stopped {len(fleet.devices)} devices")
