"""Memory a registered device costs the server with the inventory on (reads after Register and its three
observations, /5/0/3, /5/0/5, /32002/0), against the same devices registered with the inventory off, in one run.

The devices are real SimulatedDevices in ``--procs`` worker processes (bench/ota_fanout.py's workers); the server
runs in this process. Printed for both: RSS per device beyond the started server, live asyncio tasks, CoAP
observations on the wire, and the ratio inventoried / registration only.

    python bench/inventory_memory.py [--devices 2000] [--procs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


async def measure(devices: int, procs: int, inventory: bool) -> dict[str, Any]:
    import ota_fanout  # the OTA bench's device worker processes
    import psutil

    from lwm2m_server.config import Settings
    from lwm2m_server.gc_policy import start_gc_policy
    from lwm2m_server.server import LwM2MServer

    settings = Settings.model_validate({"server": {"coap_host": "127.0.0.1", "coap_port": 0,
                                                   "data_dir": tempfile.mkdtemp(prefix="inv-mem-")}})  # fmt: skip
    server = LwM2MServer(settings, inventory=inventory)
    await server.start()
    gc_policy, gc_task = start_gc_policy(settings.server)
    gc.collect()
    me = psutil.Process()
    rss0, tasks0 = me.memory_info().rss, len(asyncio.all_tasks())
    ctx = mp.get_context("spawn")
    cmds, out = [ctx.Queue() for _ in range(procs)], ctx.Queue()
    uri = f"coap://127.0.0.1:{server.coap_port}"
    per = [devices // procs + (1 if i < devices % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=ota_fanout.worker_main, args=(i, n, uri, b"\0" * 32, 1024, cmds[i], out),
                           daemon=True) for i, n in enumerate(per)]  # fmt: skip
    try:
        for w in workers:
            w.start()
        await ota_fanout._collect(out, "ready", procs, 600)
        settled_at, last = time.monotonic(), -1
        while time.monotonic() - settled_at < 5.0:  # until the inventory has been quiet for 5 s
            observed = sum(len(server.client.coap_observations(r.endpoint)) for r in server.registry.all())
            if observed != last:
                settled_at, last = time.monotonic(), observed
            await asyncio.sleep(0.5)
        gc.collect()
        return {
            "registered": len(server.registry),
            "observations": last,
            "rss_per_device": (me.memory_info().rss - rss0) / max(1, len(server.registry)),
            "tasks": len(asyncio.all_tasks()) - tasks0,
        }
    finally:
        for q in cmds:
            q.put(("stop",))
        await asyncio.sleep(2.0)
        for w in workers:
            w.terminate()
            w.join(5)
        gc_task.cancel()
        gc_policy.restore()
        await server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    from lwm2m_server.logging import configure_logging

    configure_logging("error", "json")
    results = {}
    for inventory in (False, True):  # each in a fresh server, with fresh device processes
        results[inventory] = asyncio.run(measure(args.devices, args.procs, inventory))
    print(f"inventory memory: {args.devices} simulated devices in {args.procs} processes")
    print(f"{'server':<22} {'registered':>10} {'observations':>12} {'tasks':>7} {'RSS B/device':>13}")
    for inventory, r in results.items():
        name = "inventory on" if inventory else "registration only"
        print(f"{name:<22} {r['registered']:>10} {r['observations']:>12} {r['tasks']:>7} {r['rss_per_device']:>13.0f}")
    on, off = results[True], results[False]
    print(f"inventoried / registration only, RSS per device: {on['rss_per_device'] / off['rss_per_device']:.2f}; "
          f"{on['tasks'] / max(1, on['registered']):.3f} tasks and {on['observations'] / max(1, on['registered']):.1f}"
          " observations a device")


if __name__ == "__main__":
    main()
