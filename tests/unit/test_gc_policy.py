"""The server's GC policy: frozen start-up objects, thresholds, full collections on a timer, restorable."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from lwm2m_server.config import ConfigError, load_settings
from lwm2m_server.gc_policy import NEVER, GcPolicy, start_gc_policy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_apply_freezes_sets_thresholds_and_restore_undoes_it() -> None:
    before = gc.get_threshold()
    policy = GcPolicy(threshold0=12_345, full_interval_s=60.0)
    policy.apply()
    try:
        assert gc.get_threshold() == (12_345, before[1], NEVER)
        assert gc.get_freeze_count() > 0
    finally:
        policy.restore()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_interval_zero_keeps_automatic_full_collections() -> None:
    before = gc.get_threshold()
    policy = GcPolicy(threshold0=5000, full_interval_s=0.0)
    policy.apply()
    try:
        assert gc.get_threshold() == (5000, before[1], before[2])
    finally:
        policy.restore()


async def test_timer_collects_cyclic_garbage() -> None:
    settings = load_settings(overrides={"server": {"gc_full_interval_s": 0.05, "gc_threshold0": 1_000_000}})
    policy, task = start_gc_policy(settings.server)
    try:
        ref = _cycle()
        assert ref() is not None  # a cycle: reference counting alone does not free it
        for _ in range(100):
            await asyncio.sleep(0.02)
            if ref() is None:
                break
        assert ref() is None
        assert policy.full_collections >= 1
    finally:
        task.cancel()
        policy.restore()


def test_defaults_and_bad_values() -> None:
    server = load_settings().server
    assert server.gc_threshold0 == 700 and server.gc_full_interval_s == 600.0
    with pytest.raises(ConfigError, match="gc_full_interval_s"):
        load_settings(overrides={"server": {"gc_full_interval_s": -1}})
    with pytest.raises(ConfigError, match="gc_threshold0"):
        load_settings(overrides={"server": {"gc_threshold0": 0}})
    with pytest.raises(ValueError, match="gc_threshold0"):
        GcPolicy(threshold0=0, full_interval_s=1.0)


def test_pauses_are_counted_by_generation_while_applied() -> None:
    policy = GcPolicy(threshold0=50_000, full_interval_s=60.0)
    policy.apply()
    try:
        gc.collect(0)
        gc.collect(1)
        policy.collect_full()
        stats = policy.stats()
    finally:
        policy.restore()
    assert [stats[g]["count"] for g in ("gen0", "gen1", "gen2")] == [1, 1, 1]
    assert stats["gen2"]["max_ms"] >= 0.0 and policy.full_collections == 1
    gc.collect(0)  # restored: no longer tracked
    assert policy.stats()["gen0"]["count"] == 1
