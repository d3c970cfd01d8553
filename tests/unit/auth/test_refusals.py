"""RefusalAudit: first refusal per key written at once, repeats counted, rows per window bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from lwm2m_server.auth.refusals import OVERFLOW_CLIENT, RefusalAudit
from lwm2m_server.store.audit import AuditLog  # the protocol; store.audit implements it
from lwm2m_server.store.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def audit(tmp_path: Path) -> AsyncIterator[AuditLog]:
    store = SqliteStore(tmp_path / "a.sqlite3")
    await store.open()
    try:
        yield store.audit
    finally:
        await store.close()


async def test_window_aggregates_and_rolls_over(audit: AuditLog) -> None:
    clock = Clock()
    refusals = RefusalAudit(audit, window_s=60.0, max_keys=10, clock=clock)
    for _ in range(500):
        await refusals.refused(401, "invalid_token", "10.0.0.1", "GET", "/api/devices")
    await refusals.refused(403, "forbidden", "10.0.0.1", "POST", "/api/rollouts")
    rows = await audit.entries()
    assert [(r["action"], r["detail"]["status"]) for r in rows] == [("auth.refused", 401), ("auth.refused", 403)]
    clock.now += 61  # the next refusal closes the window: the repeat count is written first
    await refusals.refused(401, "invalid_token", "10.0.0.1", "GET", "/api/devices")
    rows = await audit.entries()
    assert [r["action"] for r in rows] == ["auth.refused", "auth.refused", "auth.refused.repeated", "auth.refused"]
    assert rows[2]["detail"]["count"] == 499 and rows[2]["detail"]["window_s"] >= 60
    assert refusals.total == 502


async def test_many_clients_cannot_grow_the_log_beyond_the_key_bound(audit: AuditLog) -> None:
    refusals = RefusalAudit(audit, window_s=60.0, max_keys=20, clock=Clock())
    for i in range(5000):  # 5000 distinct client addresses in one window
        await refusals.refused(401, "missing_token", f"10.1.{i // 256}.{i % 256}", "GET", "/metrics")
    await refusals.flush()
    rows = await audit.entries(limit=10_000)
    assert len(rows) <= 2 * (20 + 1)
    overflow = [r for r in rows if r["actor"] == OVERFLOW_CLIENT]
    assert sum(r["detail"].get("count", 0) for r in overflow) + len(overflow) == 5000 - 20  # 20 own keys
