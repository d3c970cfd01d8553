"""The owner's side of a forwarded REST call: the asking node checked the caller's token and sent the request
as it came (method, path, query, body, content type) with the caller's identity; this node replays it through its
own ASGI app in-process, so every device-scoped route works across nodes with no per-route code, and returns the
status, headers and body. The identity travels in the ASGI scope (``FORWARDED_KEY``), which no HTTP client can
set: the guard uses it instead of a token, and a replayed request is never forwarded again."""

from __future__ import annotations

import asyncio
import base64
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Asgi = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

FORWARDED_KEY = "tinymlaas.forwarded"
"""Scope key: the caller's identity (``{"token_id", "name", "role"}``) on a request another node forwarded."""

KEPT_HEADERS = ("content-type", "accept")  # what the owner needs of the caller's headers
RETURNED_HEADERS = ("content-type", "etag", "location", "retry-after", "www-authenticate")


def pack(data: bytes) -> str:
    """Bytes for a JSON notification: deflated (JSON bodies shrink several times) and base64-encoded."""
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def unpack(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text)) if text else b""


async def replay(app: Asgi, msg: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Run one forwarded request (``op: "http"``) through ``app``: (status, {"headers", "body_z"})."""
    body = unpack(str(msg.get("body_z", "")))
    headers = [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in dict(msg.get("headers") or {}).items()
               if k in KEPT_HEADERS]
    path = str(msg["path"])
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": str(msg["method"]).upper(),
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": str(msg.get("query", "")).encode("latin-1"),
        "headers": [*headers, (b"content-length", str(len(body)).encode()), (b"host", b"forwarded")],
        "client": (f"node:{msg.get('reply_to')}", 0), "server": ("forwarded", 0),
        FORWARDED_KEY: dict(msg.get("principal") or {}),
    }  # fmt: skip
    sent = False
    status = 500
    out_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the response ends the exchange
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for k, v in message.get("headers", []):
                name = k.decode("latin-1").lower()
                if name in RETURNED_HEADERS:
                    out_headers[name] = v.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return status, {"headers": out_headers, "body_z": pack(b"".join(chunks))}
