"""Test helpers shared by the integration suites: a common hardware profile and an async poll-until."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from simulator.profiles import HardwareProfile

KIB = 1024

M4F = HardwareProfile(
    name="m4f-256k",
    ram_total=256 * KIB,
    ram_free_ml=160 * KIB,
    flash_total=1024 * KIB,
    flash_free=512 * KIB,
    cpu="cortex-m4f",
    fpu=True,
    accelerator="none",
)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``predicate`` every ``step`` s until true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
