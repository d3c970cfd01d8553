"""The dashboard against an API that requires a bearer token: what the pages do with 401s. The token check here
is a stand-in for the API's own authentication (another branch), as a plain ASGI middleware on the real app:
``/api/*`` needs ``Authorization: Bearer <TEST_TOKEN>``, page shells and ``/static`` need nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from lwm2m_server.api import ApiRunner, create_app
from lwm2m_server.api.errors import error_response
from lwm2m_server.server import LwM2MServer
from tests.integration.api.conftest import api_settings
from tests.integration.web.pages import Dashboard
from tests.support.browser import TEST_TOKEN, artifact_dir, chromium

pytestmark = pytest.mark.usefixtures("browser_ok")


class RequireToken:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != f"Bearer {TEST_TOKEN}".encode():
                await error_response(401, "unauthorized", "missing or wrong API token")(scope, receive, send)
                return
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def guarded(data_dir: Path) -> AsyncIterator[str]:
    server = LwM2MServer(api_settings(data_dir))
    await server.start()
    app = create_app(server, sse_keepalive_s=0.5)
    app.add_middleware(RequireToken)
    runner = ApiRunner(app, "127.0.0.1", 0)
    await runner.start()
    try:
        yield runner.url
    finally:
        await runner.stop()
        await server.stop()


def _walk(base: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with chromium() as driver:
        ui = Dashboard(driver, base, artifact_dir("dashboard-auth"))
        ui.open("/models?x=1")  # no token yet: the page's first API call is a 401 -> the login page
        ui.wait(lambda d: "/login" in d.current_url)
        seen["redirect"] = driver.current_url
        ui.type("#token", "wrong-token")
        ui.find("#login-form button[type=submit]").click()
        seen["wrong"] = ui.wait_text("#errors", "not accepted")
        seen["wrong_stored"] = ui.session_token()
        ui.screenshot("login-rejected")
        ui.type("#token", TEST_TOKEN)
        ui.find("#login-form button[type=submit]").click()
        ui.wait(lambda d: d.current_url.endswith("/models?x=1"))  # back where the operator wanted to go
        ui.wait_loaded("models")
        seen["catalog"] = ui.text("#catalog tbody")
        ui.find("#logout").click()
        ui.wait(lambda d: "/login" in d.current_url)
        seen["after_logout"] = ui.session_token()
    return seen


async def test_pages_send_the_token_and_go_to_login_on_401(tmp_path: Path) -> None:
    async with guarded(tmp_path) as base:
        seen = await asyncio.wait_for(asyncio.to_thread(_walk, base), 120)
    assert seen["redirect"].endswith("/login?next=%2Fmodels%3Fx%3D1"), seen
    assert "that token was not accepted" in seen["wrong"] and seen["wrong_stored"] is None
    assert "digits-cnn" in seen["catalog"]
    assert seen["after_logout"] is None
