"""The dashboard in headless Chromium against a real Application and simulated devices over loopback UDP:
log in with a token, the fleet, a filter and a bad one, a device read, a model upload and its fit report, a
rollout created, started, paused, resumed and followed live to completion, events and audit, a narrow screen.
Screenshots of each page go to tests/artifacts/dashboard/."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.integration.api.conftest import M0
from tests.integration.rollouts.conftest import KWS, M4F, TINY, Stack
from tests.integration.web.pages import Dashboard
from tests.support.browser import api_token, artifact_dir, auth_headers, chromium, request_headers

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("browser_ok"),
              pytest.mark.skipif(not KWS.exists(), reason="mlperf-tiny models not available")]  # fmt: skip

FLEET = {"m4f-0": M4F, "m4f-1": M4F, "m0-0": M0, "tiny-0": TINY}
M4F_FILTER = 'cpu == "cortex-m4f"'


async def _fleet(stack: Stack) -> None:
    for endpoint, profile in FLEET.items():
        await stack.add_device(endpoint, profile)


def _endpoints(ui: Dashboard) -> list[str]:
    return [row.find_element(By.CSS_SELECTOR, "th").text for row in ui.find_all("#fleet-table tbody tr")]


def _login_and_fleet(ui: Dashboard) -> None:
    ui.open("/login")
    ui.type("#token", api_token())
    ui.find("#token").send_keys(Keys.ENTER)  # keyboard only
    ui.wait_loaded("fleet")
    assert ui.session_token() == api_token()
    sent = request_headers(ui.driver, "/api/devices")
    assert sent and all(h.get("authorization") == f"Bearer {api_token()}" for h in sent), sent
    assert _endpoints(ui) == sorted(FLEET)
    assert ui.text("#fleet-count") == "4 devices registered"
    m4f = ui.find_all("#fleet-table tbody tr")[1].text
    assert "online" in m4f and "cortex-m4f" in m4f and "160 KiB / 512 KiB" in m4f and "idle" in m4f
    assert ui.unlabelled_controls() == []

    ui.type("#filter", M4F_FILTER)
    ui.find("#fleet-form button[type=submit]").click()
    ui.wait_text("#fleet-count", "2 devices match the filter")
    assert _endpoints(ui) == ["m4f-0", "m4f-1"]
    assert "filter=" in ui.driver.current_url
    ui.screenshot("fleet")

    ui.type("#filter", "ram_total >= ")
    ui.find("#fleet-form button[type=submit]").click()
    ui.wait_text("#errors", "the filter ends too early")
    assert "HTTP 400" in ui.errors() and ui.text("#fleet-count") == "Could not load the fleet."
    ui.screenshot("fleet-bad-filter")

    ui.type("#filter", "")
    ui.select("#sort", "-ram_total")  # sorts at once
    ui.wait(lambda d: _endpoints(ui) == ["m4f-0", "m4f-1", "m0-0", "tiny-0"])  # RAM 256, 256, 64, 8 KiB
    assert ui.errors() == ""


def _keyboard(ui: Dashboard) -> None:
    """Tab reaches the skip link, the navigation, the filter, sort and paging controls and the devices; Enter in
    the filter applies it."""
    ui.open("/", "fleet")
    reached = []
    for _ in range(40):
        ActionChains(ui.driver).send_keys(Keys.TAB).perform()
        reached.append(ui.driver.execute_script(
            "const e = document.activeElement; return e.id || e.getAttribute('href') || e.textContent.trim();"))
    for control in ("#main", "/", "/models", "/rollouts", "/events", "filter", "sort", "limit", "/devices/m0-0"):
        assert control in reached, (control, reached)
    ui.find("#filter").send_keys('accelerator == "none" and ram_total < 65536', Keys.ENTER)
    ui.wait_text("#fleet-count", "1 device matches the filter")
    assert _endpoints(ui) == ["tiny-0"]


def _device(ui: Dashboard) -> None:
    ui.find("#fleet-table a[href='/devices/m0-0']").click()
    ui.wait_loaded("device")
    assert ui.text("#title") == "m0-0" and "cortex-m0plus" in ui.text("#summary")
    ui.expand("/3/0")  # /3 itself starts open
    ui.expand("/32001 ")
    ui.expand("/32001/0")
    ui.find("button[aria-label='Read Manufacturer /3/0/0']").click()
    ui.wait_text("#v-3-0-0", "TinyMLaaS Sim")
    ui.find("button[aria-label='Observe Battery Level /3/0/9']").click()
    ui.wait(lambda d: ui.text("#v-3-0-9") != "")
    assert ui.find("button[aria-label='Observe Battery Level /3/0/9']").get_attribute("aria-pressed") == "true"
    ui.find("button[aria-label='Read all of /32001/0']").click()
    ui.wait(lambda d: ui.errors() != "" or any(o.text for o in ui.find_all("output[id^='v-32001-0-']")))
    assert ui.errors() == ""
    assert ui.unlabelled_controls() == []
    ui.screenshot("device")


def _models(ui: Dashboard) -> None:
    ui.open("/models", "models")
    ui.find("#model-file").send_keys(str(KWS))
    ui.type("#model-name", "kws")
    ui.find("#upload-form button[type=submit]").click()
    ui.wait_text("#upload-status", "Uploaded kws version")
    assert "kws" in ui.text("#catalog tbody")
    ui.select("#plan-model", "kws")
    ui.find("#plan-form button[type=submit]").click()
    ui.wait_loaded("plan", timeout=180)
    status = ui.text("#plan-status")
    assert "4 devices in" in status, status
    report = ui.text("#plan")
    assert "chosen: int8" in report and "nothing fits" in report and "does not fit" in report, report
    assert "RAM need" in report and "Arena" in report and "Verdict" in report
    assert ui.driver.execute_script("return Chart.getChart('plan-chart').data.datasets.length") == 4
    assert ui.unlabelled_controls() == []
    ui.screenshot("models")


def _rollout(ui: Dashboard) -> str:
    ui.open("/rollouts", "rollouts")
    ui.select("#r-model", "kws")
    ui.type("#r-filter", "cpu == ")
    ui.wait_text("#r-count", "the filter ends too early")
    ui.type("#r-filter", M4F_FILTER)
    ui.wait_text("#r-count", "2 devices match")
    ui.type("#r-waves", "50%,100%")
    ui.type("#r-concurrency", "1")
    ui.select("#r-method", "pull")
    ui.type("#r-name", "browser")
    assert ui.unlabelled_controls() == []
    ui.screenshot("rollouts")
    ui.find("#create-form button[type=submit]").click()
    ui.wait(lambda d: "/rollouts/" in d.current_url)
    ui.wait_loaded("rollout")
    rollout_id = ui.driver.current_url.rsplit("/", 1)[1]
    ui.wait_text("#live", "Live: live")
    assert ui.text("#state") == "created"

    ui.find("[data-action=pause]").click()  # not valid while created: the 409 in words
    ui.wait_text("#errors", "HTTP 409")
    ui.find("[data-action=start]").click()
    ui.find("[data-action=pause]").click()
    ui.wait(lambda d: ui.body("data-state") == "paused")
    assert ui.errors() == "", ui.errors()
    ui.find("[data-action=resume]").click()
    ui.wait(lambda d: ui.body("data-state") == "completed", timeout=120)
    assert "confirmed: 2" in ui.text("#waves") or "confirmed: 1" in ui.text("#waves")
    assert "confirmed: 2" in ui.text("#classes")
    assert ui.text("#failing") == "No failing devices."
    points = ui.driver.execute_script("return Chart.getChart('progress-chart').data.datasets[0].data.map(p => p.y)")
    assert points[-1] == 2 and min(points) < 2, points  # followed live: it saw the count grow
    ui.screenshot("rollout")
    return rollout_id


def _after_rollout(ui: Dashboard) -> None:
    """The fleet shows the installed model; the device its OTA history, audit trail and live observed values."""
    ui.open("/?filter=" + quote(M4F_FILTER), "fleet")
    assert all("kws" in row.text for row in ui.find_all("#fleet-table tbody tr")), ui.text("#fleet-table tbody")
    ui.open("/devices/m4f-0", "device")
    ui.wait_text("#ota", "succeeded")
    ui.wait_text("#audit", "device.confirmed")
    assert "kws" in ui.text("#summary")
    ui.expand("/3/0")
    ui.find("button[aria-label='Observe Current Time /3/0/13']").click()
    ui.wait(lambda d: ui.find("button[aria-label='Observe Current Time /3/0/13']").text == "Stop observing")
    assert ui.errors() == ""
    # another client (not this page) changes the value: the page shows it from the notification alone
    ui.fetch("PUT", "/api/devices/m4f-0/3/0/13", "1234567890")
    ui.wait_text("#v-3-0-13", "1234567890")
    ui.screenshot("device-after-rollout")


def _failing(ui: Dashboard) -> None:
    """A rollout to a device nothing fits: the failing device with its Object 5 result and the reason in words."""
    ui.open("/rollouts", "rollouts")
    ui.select("#r-model", "kws")
    ui.type("#r-filter", 'endpoint == "tiny-0"')
    ui.wait_text("#r-count", "1 device matches")
    ui.find("#r-start").click()
    ui.find("#create-form button[type=submit]").click()
    ui.wait(lambda d: "/rollouts/" in d.current_url)
    ui.wait_text("#failing", "tiny-0", timeout=60)
    failing = ui.text("#failing")
    assert "incompatible" in failing and "initial" in failing and "needs 58,464 B flash" in failing, failing
    ui.screenshot("rollout-failing")


def _events(ui: Dashboard, rollout_id: str) -> None:
    ui.open("/events", "events")
    ui.type("#audit-rollout", rollout_id)
    ui.find("#audit-form button[type=submit]").click()
    ui.wait_text("#audit", "rollout.created")
    audit = ui.text("#audit")
    assert "rollout.completed" in audit and "pause" in audit and "resume" in audit
    ui.type("#audit-text", "resume")
    ui.find("#audit-form button[type=submit]").click()
    ui.wait_text("#audit", "1 entry")
    ui.wait_text("#feed-status", "live")
    ui.fetch("POST", f"/api/rollouts/{rollout_id}/retry")  # an operator elsewhere: its events show up live
    ui.wait_text("#feed", "rollout.progress")
    assert rollout_id in ui.text("#feed")
    assert ui.unlabelled_controls() == []
    ui.screenshot("events")
    # a finished rollout opened later: its chart comes from the audit log's per-device history
    ui.find(f"#audit a[href='/rollouts/{rollout_id}']").click()
    ui.wait_loaded("rollout")
    points = ui.driver.execute_script("return Chart.getChart('progress-chart').data.datasets[0].data.map(p => p.y)")
    assert points[0] == 0 and 1 in points and points[-1] == 2, points


def _narrow(ui: Dashboard) -> None:
    ui.driver.set_window_size(390, 844)
    ui.open("/", "fleet")
    overflow = ui.driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page {overflow}px wider than a phone screen"
    ui.screenshot("fleet-narrow")


def _browse(base: str) -> str:
    shots = artifact_dir("dashboard")
    with chromium(network_log=True) as driver:
        ui = Dashboard(driver, base, shots)
        try:
            _login_and_fleet(ui)
            _keyboard(ui)
            ui.open("/", "fleet")
            _device(ui)
            _models(ui)
            rollout_id = _rollout(ui)
            _after_rollout(ui)
            _failing(ui)
            _events(ui, rollout_id)
            _narrow(ui)
        except Exception:
            ui.screenshot("failure")  # where it stopped, for the one reading the test report
            raise
    return rollout_id


async def test_dashboard_end_to_end(app_stack: Stack) -> None:
    await _fleet(app_stack)
    started = time.monotonic()
    rollout_id = await asyncio.wait_for(asyncio.to_thread(_browse, app_stack.url), 400)
    # what the page showed is what the API says
    status: dict[str, Any] = (await app_stack.http.get(f"/api/rollouts/{rollout_id}",
                                                       headers=auth_headers())).json()  # fmt: skip
    assert status["state"] == "completed" and status["counts"] == {"confirmed": 2}
    assert status["spec"]["filter"] == M4F_FILTER and status["spec"]["name"] == "browser"
    assert status["spec"]["waves"] == "50%,100%" and status["spec"]["max_concurrency"] == 1
    assert status["spec"]["method"] == "pull" and status["spec"]["error_threshold_count"] is None
    assert time.monotonic() - started < 400


def _fragment_login(base: str) -> tuple[str | None, str]:
    with chromium() as driver:
        ui = Dashboard(driver, base, artifact_dir("dashboard-login"))
        ui.open(f"/#token={api_token()}", "fleet")  # a real token: the fleet page's API calls must pass
        return ui.session_token(), driver.current_url


async def test_token_in_the_url_fragment_logs_in(app_stack: Stack) -> None:
    token, url = await asyncio.to_thread(_fragment_login, app_stack.url)
    assert token == api_token()
    assert "#" not in url and "token" not in url  # taken out of the address bar at once
