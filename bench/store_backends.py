#!/usr/bin/env python3
"""Store backends: registration write-behind and committed repository writes, SQLite against PostgreSQL, in one run.

For each backend, on a fresh file / a fresh database:

* ``registrations/s``: N ``save_registration`` calls (write-behind, batched, one event row each like the server),
  then ``flush`` — the time until all of them are committed;
* ``committed writes/s``: N ``audit.record`` calls, 64 concurrent callers, each returning once committed (the
  path OTA job transitions and rollout state take).

The SQLite figures are the baseline; the ratio is PostgreSQL / SQLite. PostgreSQL runs on 127.0.0.1:5432
(``--dsn`` for another server; trust auth, the bench makes and drops its own database).

    python bench/store_backends.py [--devices 10000] [--writes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lwm2m_server.logging import configure_logging
from lwm2m_server.registration import Registration
from lwm2m_server.store.base import Store


async def _measure(store: Store, devices: int, writes: int) -> dict[str, float]:
    await store.open()
    try:
        t0 = time.perf_counter()
        for i in range(devices):
            reg = Registration(f"bench-{i:06d}", f"r{i}", "127.0.0.1", 10000 + i % 50000, 300, "1.1", "U", False,
                               content_formats=frozenset({0, 112}))
            await store.save_registration(reg)
            await store.append_event("registered", reg.endpoint, {"lifetime": 300})
        await store.flush()
        regs = devices / (time.perf_counter() - t0)
        sem = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with sem:
                await store.audit.record("bench.write", endpoint=f"bench-{i}", detail={"i": i})

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(writes)))
        committed = writes / (time.perf_counter() - t0)
        assert len(await store.load_registrations()) == devices
        return {"registrations_per_s": regs, "committed_writes_per_s": committed}
    finally:
        await store.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--writes", type=int, default=2_000)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    configure_logging("error", "console")
    import asyncpg

    from lwm2m_server.store.postgres import PostgresStore
    from lwm2m_server.store.sqlite import SqliteStore

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        results["sqlite"] = await _measure(SqliteStore(Path(tmp) / "s.sqlite3"), args.devices, args.writes)
    name = f"tinymlaas_bench_{uuid.uuid4().hex[:8]}"
    admin: Any = await asyncpg.connect(args.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = args.dsn.rsplit("/", 1)[0] + "/" + name
        results["postgres"] = await _measure(PostgresStore(dsn), args.devices, args.writes)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(f"store backends: {args.devices} registrations (+1 event each, write-behind), "
          f"{args.writes} committed writes (64 concurrent)")
    print(f"{'':10} {'registrations/s':>16} {'committed writes/s':>19}")
    for backend, r in results.items():
        print(f"{backend:10} {r['registrations_per_s']:16.0f} {r['committed_writes_per_s']:19.0f}")
    s, p = results["sqlite"], results["postgres"]
    print(f"{'ratio pg/sqlite':16} {p['registrations_per_s'] / s['registrations_per_s']:10.2f} "
          f"{p['committed_writes_per_s'] / s['committed_writes_per_s']:19.2f}")


if __name__ == "__main__":
    asyncio.run(main())
