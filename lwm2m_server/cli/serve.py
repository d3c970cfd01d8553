"""``tinymlaas serve``: the CoAP server (registrations, device management) and the HTTP API on one event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from lwm2m_server.cli.app import CliError, app


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")] = None,
    coap_port: Annotated[int | None, typer.Option("--coap-port", help="UDP port for CoAP (0 = any free port)")] = None,
    http_port: Annotated[int | None, typer.Option("--http-port", help="TCP port for the HTTP API (0 = any)")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="where the SQLite store and caches live")] = None,
    coap_host: Annotated[str | None, typer.Option("--coap-host", help="address to bind CoAP to")] = None,
    secrets_dir: Annotated[Path | None, typer.Option(
        "--secrets-dir", help="where the package signing key and credentials.key live (default: the data dir); "
        "the same files on every node of a cluster")] = None,
    no_http: Annotated[bool, typer.Option("--no-http", help="CoAP only, no HTTP API")] = False,
    store_backend: Annotated[str | None, typer.Option("--store", help="store backend: sqlite or postgres")] = None,
    store_dsn: Annotated[str | None, typer.Option("--store-dsn", help="PostgreSQL DSN (with --store postgres)")] = None,
    secure: Annotated[bool | None, typer.Option("--secure/--no-secure",
                                                help="the coaps (DTLS PSK) listener ([coap] secure)")] = None,
    coaps_port: Annotated[int | None, typer.Option("--coaps-port", help="UDP port for coaps (0 = any free)")] = None,
    no_plain: Annotated[bool, typer.Option("--no-plain", help="no plain CoAP listener (DTLS only)")] = False,
    gc_full_interval: Annotated[float | None, typer.Option(
        "--gc-full-interval", help="seconds between full GC collections (0 = CPython's automatic ones)")] = None,
    fast_push: Annotated[bool | None, typer.Option("--fast-push/--no-fast-push",
                                                   help="Block1 pushes on the fast path (server.coap_fast_push)")
                         ] = None,
    loop_stall_log_ms: Annotated[float | None, typer.Option(
        "--loop-stall-log-ms", help="log event-loop stalls at least this long, with sampled stacks (0 = off)")] = None,
    event_log_types: Annotated[str | None, typer.Option(
        "--event-log-types", help='event types appended to the event log, comma-separated ("*" = all; '
        "store.event_log_types)")] = None,
    event_log_skip: Annotated[str | None, typer.Option(
        "--event-log-skip", help='event types never appended to the event log, comma-separated ("" = none), '
        'e.g. "notification,ota.progress" (store.event_log_skip)')] = None,
) -> None:
    """Run the LwM2M server (CoAP /rd + device management) and the REST API until Ctrl-C / SIGTERM."""
    import asyncio

    from lwm2m_server.cluster.secrets import SecretsMismatch
    from lwm2m_server.config import ConfigError, load_settings
    from lwm2m_server.logging import configure_logging

    server_flags = {"coap_port": coap_port, "http_port": http_port, "data_dir": data_dir, "coap_host": coap_host,
                    "secrets_dir": str(secrets_dir) if secrets_dir is not None else None,
                    "gc_full_interval_s": gc_full_interval, "coap_fast_push": fast_push,
                    "loop_stall_log_ms": loop_stall_log_ms}
    coap_flags: dict[str, Any] = {"secure": secure, "coaps_port": coaps_port, "plain": False if no_plain else None}
    overrides: dict[str, dict[str, Any]] = {"server": dict(server_flags), "coap": coap_flags,
                                            "store": {"backend": store_backend, "dsn": store_dsn,
                                                      "event_log_types": _type_list(event_log_types),
                                                      "event_log_skip": _type_list(event_log_skip)}}
    try:
        settings = load_settings(config, overrides=overrides)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    configure_logging(settings.logging.level, settings.logging.format)
    try:
        asyncio.run(_serve(settings, http=not no_http))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise CliError(f"cannot start: {exc}", code=1) from exc
    except SecretsMismatch as exc:
        raise CliError(f"cannot start: {exc}", code=1) from exc


def _type_list(flag: str | None) -> list[str] | None:
    """A comma-separated flag as a list of event types (None: the flag was not given)."""
    return None if flag is None else [t.strip() for t in flag.split(",") if t.strip()]


async def _serve(settings: object, *, http: bool) -> None:
    import asyncio
    import signal

    from lwm2m_server.application import Application
    from lwm2m_server.config import Settings
    from lwm2m_server.gc_policy import start_gc_policy
    from lwm2m_server.loop_watch import start_loop_watch

    assert isinstance(settings, Settings)
    application = Application(settings, http=http)  # server + OTA + rollouts (+ HTTP API, MQTT bridge)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await application.start()
    # Start-up objects are frozen out of the collector; full collections on a timer, not mid-storm.
    gc_policy, gc_task = start_gc_policy(settings.server)
    loop_watch, watch_task = start_loop_watch(settings.server.loop_stall_log_ms)
    if application.initial_admin_token is not None:
        # Once, on the first start (like the package key): the server keeps only the token's hash.
        # The secret goes to stdout only (one hand-off line, like READY); the log says that it happened.
        structlog.get_logger("tinymlaas.serve").warning(
            "api.admin_token_created", hint="first start: the ADMIN_TOKEN line on stdout is shown only now; "
            "create others with `tinymlaas token create`")
        print(f"ADMIN_TOKEN {application.initial_admin_token}", flush=True)
    try:
        # One line a supervisor (or a test) can wait for: the ports actually bound.
        print(f"READY coap={application.coap_port} http={application.http_port} "
              f"coaps={application.server.coaps_port}", flush=True)
        await stop.wait()
    finally:
        watch_task.cancel()
        structlog.get_logger("tinymlaas.serve").info("loop_lag", **loop_watch.stats(), gc=gc_policy.stats())
        gc_task.cancel()
        gc_policy.restore()
        await application.stop()
