"""The owner's replay of a forwarded REST call through a real FastAPI app, in-process: method, path, query, body
and content type arrive as sent; status, the headers worth returning and the body come back; the caller's identity
is in the ASGI scope (which no HTTP client can set), and other request headers are not carried."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from lwm2m_server.cluster.replay import FORWARDED_KEY, pack, replay, unpack


def _app() -> FastAPI:
    app = FastAPI()

    @app.put("/api/devices/{ep}/{path:path}")
    async def echo(ep: str, path: str, request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse(status_code=207, headers={"ETag": '"e1"', "X-Internal": "no"}, content={
            "ep": ep, "path": path, "query": request.url.query, "body": body.decode(),
            "type": request.headers.get("content-type"), "auth": request.headers.get("authorization"),
            "who": request.scope.get(FORWARDED_KEY)})

    return app


async def test_replay_carries_the_request_and_returns_the_answer() -> None:
    msg: dict[str, Any] = {
        "op": "http", "method": "put", "path": "/api/devices/ep-1/3/0/13", "query": "format=text&partial=true",
        "headers": {"content-type": "application/json", "authorization": "Bearer secret"},
        "body_z": pack(b"1800000000"), "reply_to": "node-b",
        "principal": {"token_id": "t1", "name": "ops", "role": 2},
    }  # fmt: skip
    status, reply = await replay(_app(), msg)
    assert status == 207
    assert reply["headers"] == {"content-type": "application/json", "etag": '"e1"'}
    body = json.loads(unpack(reply["body_z"]))
    assert body == {"ep": "ep-1", "path": "3/0/13", "query": "format=text&partial=true", "body": "1800000000",
                    "type": "application/json", "auth": None,
                    "who": {"token_id": "t1", "name": "ops", "role": 2}}


async def test_unknown_route_is_the_apps_own_404() -> None:
    status, reply = await replay(_app(), {"method": "GET", "path": "/api/nothing", "principal": {}})
    assert status == 404 and b"Not Found" in unpack(reply["body_z"])
