"""The REST-client plumbing every thin CLI command shares: options, the client, one-line errors.

Exit codes: 2 for a usage problem (bad ``--server``, HTTP 400), 1 for a remote failure (unreachable,
timeout, 401/403, 404, 409, 5xx). ``--token`` / ``TINYMLAAS_TOKEN`` is sent as ``Authorization: Bearer``.
Error bodies are the API's ``{"error", "message"}`` shape.
"""

from __future__ import annotations

import json
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
