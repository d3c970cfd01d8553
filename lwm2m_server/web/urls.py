"""The dashboard's URL as printed for an operator (``tinymlaas demo --keep-running``)."""

from __future__ import annotations

from urllib.parse import quote


def dashboard_url(base: str, token: str | None = None) -> str:
    """``base`` + ``/``; with a token, ``#token=...`` so opening the link logs in (a fragment never reaches the
    server or its logs)."""
    url = base.rstrip("/") + "/"
    return f"{url}#token={quote(token, safe='')}" if token else url
