"""The event-loop lag probe: lateness histogram, and a stall logged with the stack that held the loop."""

from __future__ import annotations

import asyncio
import time

import pytest
import structlog

from lwm2m_server.config import ConfigError, load_settings
from lwm2m_server.loop_watch import BUCKETS_MS, LoopWatch


def hold_the_loop(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # CPU-busy, as a long callback is (time.sleep would release the GIL)
        pass


def hold_until_sampled(watch: LoopWatch, seconds: float) -> None:
    end, limit = time.perf_counter() + seconds, time.perf_counter() + 0.8
    while time.perf_counter() < end or (not watch.pending_samples() and time.perf_counter() < limit):
        pass


async def test_a_blocking_callback_is_logged_as_a_stall_with_its_stack() -> None:
    watch = LoopWatch(interval_s=0.005, stall_ms=30)
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(0.05)
    with structlog.testing.capture_logs() as logs:
        # at least 0.12 s, and until the sampling thread got the GIL once (a loaded machine may not run it at once)
        asyncio.get_running_loop().call_soon(hold_until_sampled, watch, 0.12)
        await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stalls = [e for e in logs if e["event"] == "event_loop_stall"]
    assert len(stalls) == 1 and watch.stalls == 1
    stall = stalls[0]
    assert 100 <= stall["lag_ms"] < 1000
    # the loop thread's own CPU in the window (less than the lag when the machine is busy), never more than it
    assert 0 < stall["busy_ms"] <= stall["window_ms"] + 5 and stall["process_ms"] >= stall["busy_ms"] - 1
    assert any("hold_until_sampled" in frame for sample in stall["samples"] for frame in sample), stall["samples"]
    assert watch.max_ms >= 100
    assert watch.percentile_ms(1.0) == next(b for b in BUCKETS_MS if b >= stall["lag_ms"])  # the stall's bucket
    assert watch.stats()["probes"] > 5


async def test_probe_without_stall_logging_only_records() -> None:
    watch = LoopWatch(interval_s=0.005, stall_ms=0)
    task = asyncio.create_task(watch.run())
    with structlog.testing.capture_logs() as logs:
        await asyncio.sleep(0.03)
        hold_the_loop(0.03)
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [e for e in logs if e["event"] == "event_loop_stall"]
    assert watch.stalls == 0 and watch.max_ms >= 20
    assert watch._thread is None  # no sampling thread unless stalls are logged


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        LoopWatch(interval_s=0)
    with pytest.raises(ValueError, match="loop_stall_log_ms"):
        LoopWatch(stall_ms=-1)
    with pytest.raises(ConfigError):
        load_settings(None, overrides={"server": {"loop_stall_log_ms": -5}})
    assert load_settings(None, overrides={"server": {"loop_stall_log_ms": 25}}).server.loop_stall_log_ms == 25
