"""How many simulated devices one process runs: ``python -m simulator.capacity coap://127.0.0.1:5683 500``.

Starts N devices from a fleet file against a running server, waits until all registered, and prints wall
time, this process's CPU seconds, RSS per device, uplink (Register/Update) failures, idle CPU, and de-registration time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import psutil

from lwm2m_server.logging import configure_logging
from lwm2m_server.resources import DEFAULT_FLEET
from simulator.fleet import Fleet


async def measure(uri: str, count: int, fleet_file: str, stagger_s: float, hold_s: float) -> dict[str, float]:
    proc = psutil.Process()
    rss0, cpu0 = proc.memory_info().rss, sum(proc.cpu_times()[:2])
    fleet = Fleet.from_toml(fleet_file, uri, count)
    fleet.stagger_s = stagger_s
    t0 = time.perf_counter()
    await fleet.start(wait_registered=None)
    opened = time.perf_counter() - t0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(fleet.wait_registered(), 300)
    registered_s = time.perf_counter() - t0
    cpu1, rss1 = sum(proc.cpu_times()[:2]), proc.memory_info().rss
    registered = fleet.registered
    never = len(fleet.devices) - registered
    failures = sum(d.uplink_failures for d in fleet.devices)
    await asyncio.sleep(hold_s)
    idle_cpu = (sum(proc.cpu_times()[:2]) - cpu1) / hold_s
    t1 = time.perf_counter()
    await fleet.stop()
    return {
        "devices": count,
        "registered": registered,
        "sockets_open_s": round(opened, 2),
        "all_registered_s": round(registered_s, 2),
        "start_cpu_s": round(cpu1 - cpu0, 1),
        "rss_per_device_kb": round((rss1 - rss0) / count / 1024, 1),
        "never_registered": never,
        "uplink_failures": failures,
        "idle_cpu_pct_of_core": round(100 * idle_cpu, 1),
        "deregister_s": round(time.perf_counter() - t1, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("server", help="coap://host:port of a running server")
    parser.add_argument("devices", type=int, nargs="?", default=500)
    parser.add_argument("--fleet", default=str(DEFAULT_FLEET))
    parser.add_argument("--stagger-ms", type=float, default=0.0)
    parser.add_argument("--hold", type=float, default=5.0, help="seconds to idle after registration")
    args = parser.parse_args()
    configure_logging("warning")
    result = asyncio.run(measure(args.server, args.devices, args.fleet, args.stagger_ms / 1000.0, args.hold))
    print(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
