"""The REST-client plumbing every thin CLI command shares: options, the client, one-line errors.

Exit codes: 2 for a usage problem (bad ``--server``, HTTP 400), 1 for a remote failure (unreachable,
timeout, 401/403, 404, 409, 5xx). ``--token`` / ``TINYMLAAS_TOKEN`` is sent as ``Authorization: Bearer``.
Error bodies are the API's ``{"error", "message"}`` shape.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lwm2m_server.cli.app import CliError

if TYPE_CHECKING:
    import httpx

DEFAULT_SERVER = "http://127.0.0.1:8080"
ServerOpt = Annotated[str, typer.Option("--server", envvar="TINYMLAAS_SERVER", help="Server HTTP API base URL")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="TINYMLAAS_TOKEN", show_default=False,
                                              help="API token (Authorization: Bearer); see `tinymlaas token`")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def auth_headers(token: str | None) -> dict[str, str]:
    """The Authorization header for ``token`` (none without one: the server then answers 401)."""
    if token is None or not token.strip():
        return {}
    token = token.strip()
    if not token.isascii() or not token.isprintable():
        raise CliError("--token / TINYMLAAS_TOKEN must be printable ASCII", code=2)
    return {"Authorization": f"Bearer {token}"}


def client(server: str, timeout: float | None = 60.0, *, token: str | None = None) -> httpx.Client:
    import httpx

    if not server.startswith(("http://", "https://")):
        raise CliError(f"--server must be an http:// or https:// URL, got {server!r}", code=2)
    return httpx.Client(base_url=server.rstrip("/"), timeout=httpx.Timeout(timeout, connect=5.0),
                        headers=auth_headers(token))


def failure(response: httpx.Response) -> CliError:
    """The one-line error for an HTTP error response."""
    try:
        body = response.json()
        detail = f"{body['error']}: {body['message']}"
    except (ValueError, KeyError, TypeError):
        detail = response.text.strip()[:200] or response.reason_phrase
    hint = ""
    if response.status_code == 401:
        hint = " (pass --token or set TINYMLAAS_TOKEN)"
    return CliError(f"HTTP {response.status_code} {detail}{hint}", code=2 if response.status_code == 400 else 1)


def call(http: httpx.Client, method: str, url: str, **kwargs: Any) -> Any:
    """One request on an open client; the decoded JSON body, or a :class:`CliError`."""
    import httpx

    try:
        response = http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise CliError(f"{http.base_url} did not answer in time", code=1) from exc
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {http.base_url}: {exc}", code=1) from exc
    if response.status_code >= 400:
        raise failure(response)
    return response.json()


def request(server: str, method: str, url: str, *, timeout: float | None = 60.0, token: str | None = None,
            **kwargs: Any) -> Any:
    """One request on a fresh client (commands that make a single call)."""
    with client(server, timeout, token=token) as http:
        return call(http, method, url, **kwargs)


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event type, data) pairs from SSE lines; comments and retry lines are skipped."""
    kind, data = "message", list[str]()
    for line in lines:
        if line == "":
            if data:
                yield kind, "\n".join(data)
            kind, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


def watch_notifications(
    server: str,
    endpoint: str,
    *,
    token: str | None,
    start: Callable[[], Any],
    related: Callable[[dict[str, Any], Any], bool],
    show_initial: Callable[[Any], None],
    fmt_value: Callable[[Any], str],
    stop: Callable[[], None],
    count: int | None,
    as_json: bool,
    keep: bool,
) -> None:
    """Follow an observation through the server's SSE events until Ctrl-C (or ``count`` notifications).

    The event stream is opened first and ``start()`` (which starts the observation and returns the API's answer,
    with its ``content``) only then, so no notification is missed. An event counts when ``related(event data,
    answer)``. On exit ``stop()`` cancels the observation unless ``keep``; failures are one-line CLI errors.
    """
    import httpx

    seen = 0
    try:
        with client(server, None, token=token) as http, http.stream(
            "GET", "/api/events", params={"endpoint": endpoint, "type": "notification"}
        ) as stream:
            if stream.status_code >= 400:
                stream.read()
                raise failure(stream)
            initial = start()
            if as_json:
                typer.echo(json.dumps({"type": "initial", "endpoint": endpoint, "content": initial["content"]}))
            else:
                show_initial(initial)
            sys.stdout.flush()
            for kind, raw in sse_events(stream.iter_lines()):
                event = json.loads(raw)
                data = event.get("data", {})
                if kind != "notification" or not related(data, initial):
                    continue
                seen += 1
                if as_json:
                    typer.echo(json.dumps(event))
                else:
                    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("ts", time.time())))
                    for p, v in (data.get("values") or data.get("content") or {}).items():
                        typer.echo(f"{stamp} {p} = {fmt_value(v)}")
                sys.stdout.flush()
                if count is not None and seen >= count:
                    break
    except KeyboardInterrupt:
        pass
    except httpx.ConnectError as exc:
        raise CliError(f"cannot reach {server}: {exc}", code=1) from exc
    except httpx.HTTPError as exc:
        raise CliError(f"{server}: {exc}", code=1) from exc
    finally:
        if not keep:
            with contextlib.suppress(CliError, OSError):  # best-effort clean-up
                stop()
