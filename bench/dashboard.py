#!/usr/bin/env python3
"""Dashboard first paint with a big fleet: the fleet page in headless Chromium against the raw JSON API call that
fills it, both measured in the same run against the same server.

N devices (default 10,000, a mix of hardware classes) are registered directly through the store (registrations
and inventory profiles, as a server restart reloads them), then a real ``LwM2MServer`` + HTTP API starts on
loopback. Measured, as medians over ``--runs``:

* ``api``   -- ``GET /api/devices?limit=100`` from an HTTP client (the page's only data request);
* ``fcp``   -- the page's First Contentful Paint (Paint Timing), i.e. the shell on screen;
* ``fleet`` -- the ``fleet-rendered`` performance mark: the first 100 rows of the 10,000 on screen, counted
  from navigation start (includes the page's own ``/api/devices`` call).

The same again with a target filter (``--filter``, evaluated server-side over all N devices) and a sort.
Printed: each figure, and the ratios fleet / api and fcp / api.

    python bench/dashboard.py [--devices 10000] [--runs 5] [--filter 'ram_total >= 262144']
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lwm2m_server.api import ApiRunner, create_app  # noqa: E402
from lwm2m_server.auth.tokens import TokenService  # noqa: E402
from lwm2m_server.config import load_settings  # noqa: E402
from lwm2m_server.inventory import DeviceProfile  # noqa: E402
from lwm2m_server.protocol.paths import LwM2MPath  # noqa: E402
from lwm2m_server.registration import Registration  # noqa: E402
from lwm2m_server.server import LwM2MServer  # noqa: E402
from lwm2m_server.store.sqlite import SqliteStore  # noqa: E402
from tests.support.browser import chromium, missing_browser  # noqa: E402

KIB = 1024
CLASSES = [  # (cpu, ram_total, ram_free_ml, flash_total, flash_free, fpu, accelerator)
    ("cortex-m0plus", 64 * KIB, 24 * KIB, 256 * KIB, 128 * KIB, False, "none"),
    ("cortex-m4f", 256 * KIB, 160 * KIB, 1024 * KIB, 512 * KIB, True, "none"),
    ("cortex-m7", 512 * KIB, 320 * KIB, 2048 * KIB, 1024 * KIB, True, "none"),
    ("cortex-m55", 512 * KIB, 384 * KIB, 2048 * KIB, 1024 * KIB, True, "ethos-u55-128"),
]
PATHS = frozenset(LwM2MPath.parse(p) for p in ("/1/0", "/3/0", "/4/0", "/5/0", "/32001/0", "/32002/0"))


async def seed(settings: Any, devices: int) -> float:
    """Write N registrations + profiles to the store the server will open; returns seconds taken."""
    started = time.perf_counter()
    store = SqliteStore(settings.store_path)
    await store.open()
    now = time.time()
    for i in range(devices):
        cpu, ram, ram_ml, flash, flash_free, fpu, accel = CLASSES[i % len(CLASSES)]
        endpoint = f"bench-{cpu}-{i:05d}"
        reg = Registration(endpoint=endpoint, reg_id=f"r{i:07d}", host="127.0.0.1", port=20000 + i % 40000,
                           lifetime=86400, lwm2m_version="1.1" if i % 3 else "1.0", binding="UQ" if i % 5 == 0 else "U",
                           queue_mode=i % 5 == 0, content_formats=frozenset({110, 112, 11542}),
                           objects={1: "1.1", 3: "1.1", 4: "1.3", 5: "1.1", 32001: None, 32002: None},
                           instances=PATHS, registered_at=now - i)  # fmt: skip
        profile = DeviceProfile(manufacturer="TinyMLaaS Sim", model=f"{cpu}-board", ram_total=ram, ram_free_ml=ram_ml,
                                flash_total=flash, flash_free=flash_free, cpu=cpu, clock_mhz=64, fpu=fpu,
                                accelerator=accel, runtime="tflm-2024", hardware_known=True)  # fmt: skip
        await store.save_registration(reg)
        await store.save_profile(endpoint, profile.to_dict())
    await store.flush()
    await store.close()
    return time.perf_counter() - started


PAINT = """const fcp = performance.getEntriesByName('first-contentful-paint')[0];
const fleet = performance.getEntriesByName('fleet-rendered')[0];
return {fcp: fcp ? fcp.startTime : null, fleet: fleet ? fleet.startTime : null,
        rows: document.querySelectorAll('#fleet-table tbody tr').length,
        count: document.getElementById('fleet-count').textContent};"""


def browse(url: str, runs: int, query: str, token: str) -> list[dict[str, Any]]:
    from selenium.webdriver.support.ui import WebDriverWait

    results = []
    with chromium() as driver:
        driver.get(f"{url}/login#token={token}")  # log in once (and warm the browser's own start-up)
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.loaded") == "fleet")
        for _ in range(runs):
            driver.get(f"{url}/?{query}&_={time.time_ns()}")
            WebDriverWait(driver, 60, poll_frequency=0.02).until(
                lambda d: d.execute_script("return document.body.dataset.loaded") in ("fleet", "error"))
            results.append(driver.execute_script(PAINT))
    return results


async def measure_api(url: str, params: dict[str, str], n: int, token: str) -> tuple[list[float], int]:
    """Times of ``GET /api/devices`` with the page's query (first two calls are warm-up), and the match count."""
    import httpx

    times: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for i in range(n):
            started = time.perf_counter()
            response = await http.get("/api/devices", params={**params, "limit": 100})
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.text[:200]
            total = int(response.json()["total"])
            if i >= 2:
                times.append(elapsed)
    return times, total


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--filter", default="ram_total >= 262144 and accelerator == \"none\"")
    args = parser.parse_args()
    if (reason := missing_browser()) is not None:
        raise SystemExit(f"dashboard bench needs Chromium: {reason}")

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as data_dir:
        settings = load_settings(environ={}, overrides={"server": {
            "coap_host": "127.0.0.1", "coap_port": 0, "http_port": 0, "data_dir": data_dir}})  # fmt: skip
        seconds = await seed(settings, args.devices)
        server = LwM2MServer(settings)
        await server.start()
        tokens = TokenService(server.store.tokens)
        _, token = await tokens.create("viewer", "bench")  # the dashboard only reads
        runner = ApiRunner(create_app(server, tokens=tokens), "127.0.0.1", 0)
        await runner.start()
        try:
            figures = []
            for params in ({}, {"filter": args.filter, "sort": "-last_seen"}):
                api_ms, total = await measure_api(runner.url, params, args.runs * 4 + 2, token)
                query = urlencode(params)
                pages = await asyncio.to_thread(browse, runner.url, args.runs, query, token)
                for page in pages:
                    assert page["rows"] == min(100, total) and page["count"].startswith(f"{total} device"), page
                figures.append((params, total, api_ms, pages))
        finally:
            await runner.stop()
            await server.stop()
    print(f"devices registered: {args.devices} (seeded through the store in {seconds:.1f} s)")
    worst = 0.0
    for params, total, api_ms, pages in figures:
        api = statistics.median(api_ms)
        fcp = statistics.median(p["fcp"] for p in pages)
        fleet = statistics.median(p["fleet"] for p in pages)
        worst = max(worst, fleet)
        print(f"-- fleet page {('?' + urlencode(params)) if params else '(no filter)'}: {total} devices match")
        print(f"api   GET /api/devices (same query, limit=100)  median {api:7.1f} ms  (n={len(api_ms)})")
        print(f"fcp   first contentful paint (the shell)        median {fcp:7.1f} ms  (n={len(pages)})")
        print(f"fleet 100 rows on screen, from navigation start median {fleet:7.1f} ms  (n={len(pages)})")
        print(f"ratio fleet / api = {fleet / api:.2f}x   fcp / api = {fcp / api:.2f}x")
    print(f"fleet page with data on screen under 1 s in every case: {'yes' if worst < 1000 else 'NO'}")


if __name__ == "__main__":
    asyncio.run(main())
