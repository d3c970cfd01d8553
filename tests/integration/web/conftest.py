"""A full Application (server, OTA, rollouts, HTTP with the dashboard) and simulated devices over loopback UDP,
for the dashboard's tests; the stack is the rollout suites' (tests/integration/rollouts/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.api.conftest import stack
from tests.integration.rollouts.conftest import Stack, running_stack
from tests.support.browser import missing_browser

__all__ = ["stack"]  # the API suites' LwM2MServer + HTTP stack, for the page-shell tests


@pytest.fixture(scope="session")
def web_compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-compile-cache")


@pytest_asyncio.fixture
async def app_stack(tmp_path: Path, web_compile_cache: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path / "data", web_compile_cache) as s:
        yield s


@pytest.fixture
def browser_ok() -> None:
    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)
