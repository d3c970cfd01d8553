"""Selenium steps for the dashboard tests: waits on what the page shows, never on fixed sleeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

UNLABELLED = """return [...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !(e.tagName === 'BUTTON' && e.textContent.trim()))
  .map(e => e.outerHTML.slice(0, 120));"""


class Dashboard:
    def __init__(self, driver: Any, base: str, shots: Path, timeout: float = 30.0) -> None:
        self.driver = driver
        self.base = base.rstrip("/")
        self.shots = shots
        self.timeout = timeout

    def open(self, path: str, loaded: str | None = None) -> None:
        self.driver.get(self.base + path)
        if loaded is not None:
            self.wait_loaded(loaded)

    def wait(self, condition: Any, timeout: float | None = None) -> Any:
        return WebDriverWait(self.driver, timeout or self.timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
                             ).until(condition)

    def wait_loaded(self, what: str, timeout: float | None = None) -> None:
        self.wait(lambda d: self.body("data-loaded") in (what, "error"), timeout)
        assert self.body("data-loaded") == what, self.errors()

    def body(self, attribute: str) -> str | None:
        value: str | None = self.driver.execute_script(
            "return document.body ? document.body.getAttribute(arguments[0]) : null", attribute)
        return value

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def wait_text(self, css: str, needle: str, timeout: float | None = None) -> str:
        self.wait(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), needle), timeout)
        return self.text(css)

    def type(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def select(self, css: str, value: str) -> None:
        Select(self.find(css)).select_by_value(value)

    def expand(self, label_start: str) -> None:
        """Open the tree node whose summary starts with ``label_start`` (clicked, as an operator would)."""
        for summary in self.find_all("#tree summary"):
            if summary.text.startswith(label_start):
                summary.click()
                return
        raise AssertionError(f"no tree node {label_start!r}")

    def errors(self) -> str:
        return self.text("#errors")

    def fetch(self, method: str, path: str, body: str | None = None) -> int:
        """A request from the page's origin with the logged-in token, outside the page's own code (another
        operator, say); returns the HTTP status."""
        status: int = self.driver.execute_async_script(
            """const [method, path, body, done] = arguments;
            const headers = {"Content-Type": "application/json",
                             Authorization: `Bearer ${sessionStorage.getItem('tinymlaas.token')}`};
            fetch(path, {method, headers, body: body === null ? undefined : body}).then(r => done(r.status),
                                                                                         () => done(0));""",
            method, path, body)
        assert 200 <= status < 300, (method, path, status)
        return status

    def session_token(self) -> str | None:
        token: str | None = self.driver.execute_script("return sessionStorage.getItem('tinymlaas.token')")
        return token

    def unlabelled_controls(self) -> list[str]:
        found: list[str] = self.driver.execute_script(UNLABELLED)
        return found

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        size = self.driver.get_window_size()
        self.driver.set_window_size(size["width"], min(max(height + 140, size["height"]), 4000))
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(size["width"], size["height"])
        assert path.stat().st_size > 1000
        return path
