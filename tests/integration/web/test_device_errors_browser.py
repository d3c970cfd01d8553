"""Device errors on the device page, in words: a device that went silent (504 after the request timeout), one
whose socket is gone (the network error, 502) and an unknown device (404). The server keeps serving."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.api.conftest import Stack
from tests.integration.web.pages import Dashboard
from tests.support.browser import api_token, artifact_dir, chromium

pytestmark = pytest.mark.usefixtures("browser_ok")


def _read_manufacturer(ui: Dashboard, endpoint: str, needle: str) -> tuple[str, str]:
    ui.open(f"/devices/{endpoint}", "device")
    ui.expand("/3/0")
    ui.find("button[aria-label='Read Manufacturer /3/0/0']").click()
    return ui.wait_text("#errors", needle, timeout=20), ui.text("#v-3-0-0")


def _walk(base: str) -> dict[str, tuple[str, str] | str]:
    with chromium() as driver:
        ui = Dashboard(driver, base, artifact_dir("dashboard-errors"))
        ui.open(f"/#token={api_token()}", "fleet")
        seen: dict[str, tuple[str, str] | str] = {"silent": _read_manufacturer(ui, "silent-0", "HTTP 504")}
        ui.screenshot("device-timeout")
        seen["gone"] = _read_manufacturer(ui, "gone-0", "HTTP 502")
        ui.open("/devices/nobody", "error")
        seen["unknown"] = ui.errors()
    return seen


async def test_device_errors_in_words(stack: Stack) -> None:
    silent = await stack.add_device("silent-0")
    assert silent.link is not None
    silent.link.loss_pct = 100.0  # still registered, every datagram lost from now on
    gone = await stack.add_device("gone-0")
    await asyncio.wait_for(gone.stop(deregister=False), 5.0)  # still registered, its port closed
    stack.devices.pop("gone-0")
    seen = await asyncio.wait_for(asyncio.to_thread(_walk, stack.url), 90)
    banner, inline = seen["silent"]
    assert "silent-0" in banner and "(HTTP 504 timeout)" in banner and inline and "HTTP" not in inline, seen
    banner, inline = seen["gone"]
    assert "gone-0" in banner and "(HTTP 502 network)" in banner and inline, seen
    assert "unknown device 'nobody'" in seen["unknown"] and "HTTP 404" in seen["unknown"], seen
    assert (await stack.http.get("/healthz")).status_code == 200
