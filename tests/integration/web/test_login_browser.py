"""The dashboard against the API's real bearer-token guard: what the pages do with 401s. ``/api/*`` needs a
token, page shells and ``/static`` need nothing (``lwm2m_server.web.pages`` is OPEN in the app's ROUTERS)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lwm2m_server.server import LwM2MServer
from tests.integration.api.conftest import api_settings
from tests.integration.web.pages import Dashboard
from tests.support.auth import authorized_api
from tests.support.browser import api_token, artifact_dir, chromium

pytestmark = pytest.mark.usefixtures("browser_ok")


@contextlib.asynccontextmanager
async def guarded(data_dir: Path) -> AsyncIterator[str]:
    """The real app with its real token guard and an admin token (exported as TINYMLAAS_TOKEN)."""
    server = LwM2MServer(api_settings(data_dir))
    await server.start()
    try:
        async with authorized_api(server, sse_keepalive_s=0.5) as runner:
            yield runner.url
    finally:
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
        ui.type("#token", api_token())
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
