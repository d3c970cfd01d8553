"""Headless Chromium for the dashboard's browser tests and bench: Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium with both paths given explicitly (Selenium Manager never downloads a driver or a browser).

``auth_headers()`` is the one place the tests' API token is put on a request; the browser gets the same token
through the login page or ``#token=``. The token is the real admin token the shared fixtures create and export
as ``TINYMLAAS_TOKEN`` (tests/support/auth.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("TINYMLAAS_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("TINYMLAAS_CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def api_token() -> str:
    """The running fixture's admin token (exported as ``TINYMLAAS_TOKEN`` while its stack is up)."""
    token = os.environ.get("TINYMLAAS_TOKEN")
    assert token, "no API token exported: use the shared fixtures (tests/support/auth.py)"
    return token


def auth_headers(token: str | None = None) -> dict[str, str]:
    """The bearer header every test request carries."""
    return {"Authorization": f"Bearer {token if token is not None else api_token()}"}


def missing_browser() -> str | None:
    """Why no browser test can run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} not installed (apt-get install chromium chromium-driver; .ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[test]')"
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900, *, network_log: bool = False) -> Iterator[Any]:
    """A headless Chromium WebDriver; ``network_log`` records DevTools network events (request headers)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", f"--window-size={width},{height}"):
        options.add_argument(arg)
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def request_headers(driver: Any, url_part: str) -> list[dict[str, str]]:
    """Headers of the requests the page sent to URLs containing ``url_part`` (needs ``network_log``)."""
    found = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            request = message["params"]["request"]
            if url_part in request["url"]:
                found.append({k.lower(): v for k, v in request["headers"].items()})
    return found


def artifact_dir(name: str) -> Path:
    """``tests/artifacts/NAME`` (ignored by git), emptied: where a test writes its screenshots."""
    path = ARTIFACTS / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
