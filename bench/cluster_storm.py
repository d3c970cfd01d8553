#!/usr/bin/env python3
"""Cluster registration storm: registrations/s through nginx (the sample ``config/nginx-lwm2m.conf``) to 1, 2
and 3 real ``tinymlaas serve`` nodes on one PostgreSQL database, against the baseline measured in the same run:
one node on the embedded SQLite store behind the same nginx.

Each configuration gets fresh nodes (and a fresh database); the client is ``bench/registration_storm.py``'s
storm client (its ``--role client``, unchanged) pointed at nginx's port: N distinct endpoints from 64 UDP
sockets, a bounded window in flight, retransmission after 2 s. The nodes run the full application (inventory
reads after each Register, answered 4.04 by the client, event log, cluster heartbeats and, on PostgreSQL, the
event relay). Printed per configuration: reg/s and its ratio to the baseline, p50/p99, devices per node, RSS
growth per registered device per node, and CPU ms per registration in the nodes, nginx and the database's
backends (where the time goes). ``pg x3 -relay`` is the three-node run without the cross-node event relay
(its cost); ``sqlite direct`` is the baseline node without nginx (nginx's cost). ``--profile`` adds a py-spy
profile of the first node of one configuration (``pip install py-spy``).

    python bench/cluster_storm.py [--devices 3000] [--window 64] [--configs sqlite,direct,pg1,pg2,pg3,pg3-norelay]
                                  [--profile [CONFIG]]

On a 2-core machine more nodes cannot add throughput (nodes, nginx, PostgreSQL and the client share the cores):
the point is the shape and the cost per registration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from bench.registration_storm import SOCKETS, summarize_profile  # noqa: E402
from tests.support.cluster import free_udp_port, start_nginx, stop_nginx  # noqa: E402
from tests.support.nodes import Node, start_node  # noqa: E402
from tests.support.postgres import drop_pg_database, make_pg_database  # noqa: E402

STORM = ROOT / "bench" / "registration_storm.py"
CONFIGS = {  # name -> (store, nodes, nginx in front, event relay)
    "sqlite": ("sqlite x1", "sqlite", 1, True, True),
    "direct": ("sqlite direct", "sqlite", 1, False, True),
    "pg1": ("pg x1", "postgres", 1, True, True),
    "pg2": ("pg x2", "postgres", 2, True, True),
    "pg3": ("pg x3", "postgres", 3, True, True),
    "pg3-norelay": ("pg x3 -relay", "postgres", 3, True, False),
}
NODE_ENV = {  # the shipped defaults, not the tests' fast heartbeats; heartbeat 1 s so the view is fresh at the end
    "TINYMLAAS_LOGGING__LEVEL": "warning",
    "TINYMLAAS_STORE__BATCH_WINDOW_MS": "5",
    "TINYMLAAS_CLUSTER__HEARTBEAT_S": "1",
    "TINYMLAAS_CLUSTER__NODE_TIMEOUT_S": "15",
}


def _cpu_s(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return out


def _db_backends(dbname: str) -> list[int]:
    """The PostgreSQL backend processes serving this database (their title names it)."""
    pids = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] and p.info["name"].startswith("postgres") and dbname in " ".join(p.info["cmdline"] or []):
                pids.append(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return pids


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


async def _cluster_view(node: Node, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=node.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as h:
        r = await h.get("/api/cluster")
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body


async def run_config(key: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    name, store, n, via_nginx, relay = CONFIGS[key]
    env = {**NODE_ENV, "TINYMLAAS_CLUSTER__RELAY_EVENTS": "true" if relay else "false"}
    dsn = await make_pg_database() if store == "postgres" else ""
    nodes: list[Node] = []
    nginx = None
    prof = None
    try:
        nodes.append(await start_node(workdir / "node0", dsn, env))
        nodes.extend(await asyncio.gather(*(start_node(workdir / f"node{i}", dsn, env) for i in range(1, n))))
        token = nodes[0].token
        assert token is not None
        port = nodes[0].coap_port
        if via_nginx:
            port = free_udp_port()
            nginx = start_nginx(workdir / "nginx", [x.coap_port for x in nodes], port)
        await asyncio.sleep(1.0)
        node_pids = [x.proc.pid for x in nodes]
        nginx_pids = [] if nginx is None else [nginx.pid, *(c.pid for c in psutil.Process(nginx.pid).children())]
        dbname = dsn.rsplit("/", 1)[1] if dsn else ""
        rss0 = {x.proc.pid: psutil.Process(x.proc.pid).memory_info().rss for x in nodes}
        cpu0 = (_cpu_s(node_pids), _cpu_s(nginx_pids), _cpu_s(_db_backends(dbname)) if dbname else {})
        if args.profile == key and shutil.which("py-spy"):
            prof = subprocess.Popen(["py-spy", "record", "-p", str(nodes[0].proc.pid), "-r", "200", "-f", "raw",
                                     "-o", args.profile_out, "-d", "600"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1.0)
        client = await asyncio.create_subprocess_exec(
            sys.executable, str(STORM), "--role", "client", "--port", str(port), "--devices", str(args.devices),
            "--window", str(args.window), stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        out, _ = await client.communicate()
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        if prof is not None:
            prof.send_signal(signal.SIGINT)
            prof.wait(30)
        await asyncio.sleep(2.5)  # write-behind committed, a heartbeat with the final counters
        cpu1 = (_cpu_s(node_pids), _cpu_s(nginx_pids), _cpu_s(_db_backends(dbname)) if dbname else {})
        view = await _cluster_view(nodes[0], token)
        by_id = {v["node_id"]: v for v in view["nodes"]}
        per_node = []
        for x in nodes:
            v = by_id.get(x.node_id, {})
            held = int(v.get("info", {}).get("registered", 0))
            grown = psutil.Process(x.proc.pid).memory_info().rss - rss0[x.proc.pid]
            per_node.append({"held": held, "rss_mb": psutil.Process(x.proc.pid).memory_info().rss / 2**20,
                             "rss_per_device_b": grown / max(1, held), "relay": v.get("info", {}).get("event_relay")})
        ok = max(1, int(result["ok"]))
        result.update(name=name, nodes=per_node,
                      cpu_ms_per_reg={"nodes": _delta(cpu0[0], cpu1[0]) * 1000 / ok,
                                      "nginx": _delta(cpu0[1], cpu1[1]) * 1000 / ok,
                                      "postgres": _delta(cpu0[2], cpu1[2]) * 1000 / ok})
        return result
    finally:
        if nginx is not None:
            stop_nginx(nginx)
        for x in nodes:
            await x.stop()
        if dsn:
            await drop_pg_database(dsn)


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for key in args.configs.split(","):
        if key not in CONFIGS:
            raise SystemExit(f"unknown config {key!r}; choose from {', '.join(CONFIGS)}")
        with tempfile.TemporaryDirectory(prefix=f"cluster-storm-{key}-") as tmp:
            t0 = time.monotonic()
            results[key] = await run_config(key, args, Path(tmp))
            print(f"  {CONFIGS[key][0]}: done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    return results


AREAS = {  # inclusive share of samples whose stack passes through these files
    "event relay (cluster/events.py)": ("lwm2m_server/cluster/events.py", "lwm2m_server/store/postgres/notify.py"),
    "store (store/)": ("lwm2m_server/store/",),
    "inventory reads (inventory.py)": ("lwm2m_server/inventory.py",),
    "CoAP fast path + aiocoap": ("lwm2m_server/coap/", "aiocoap/"),
    "event bus sinks/subscribers (events.py)": ("lwm2m_server/events.py",),
    "HTTP API (api/, uvicorn)": ("lwm2m_server/api/", "uvicorn/"),
}


def inclusive_shares(path: str) -> list[tuple[float, str]]:
    """Share of (non-idle) samples with a frame in each area (areas overlap: a store write under the CoAP path
    counts for both)."""
    hits = dict.fromkeys(AREAS, 0)
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit() or stack.split(";")[-1].startswith("select (selectors.py"):
            continue
        total += int(n)
        for area, needles in AREAS.items():
            if any(needle in stack for needle in needles):
                hits[area] += int(n)
    return [(100.0 * hits[a] / max(1, total), a) for a in AREAS]


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"cluster storm: {args.devices} devices, window {args.window}, {SOCKETS} client sockets, "
          f"{os.cpu_count()} CPUs; baseline = one node on SQLite behind the same nginx, measured in this run")
    base = results.get("sqlite")
    print(f"{'config':<14} {'ok':>6} {'fail':>4} {'reg/s':>7} {'x base':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'devices per node':<18} {'B/dev per node':<20} {'CPU ms/reg: nodes nginx pg':>28}")
    for r in results.values():
        ratio = f"{r['rate'] / base['rate']:.2f}" if base else "-"
        held = "/".join(str(x["held"]) for x in r["nodes"])
        per_dev = "/".join(f"{x['rss_per_device_b']:.0f}" for x in r["nodes"])
        c = r["cpu_ms_per_reg"]
        print(f"{r['name']:<14} {r['ok']:>6} {r['failed']:>4} {r['rate']:>7.0f} {ratio:>6} {r['p50_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {held:<18} {per_dev:<20} {c['nodes']:>12.2f} {c['nginx']:>6.2f} "
              f"{c['postgres']:>6.2f}")
    for r in results.values():
        relays = [x["relay"] for x in r["nodes"] if x.get("relay")]
        if relays:
            sent = sum(x["events_sent"] for x in relays)
            notifies = sum(x["notifies_sent"] for x in relays)
            print(f"{r['name']}: event relay sent {sent} events in {notifies} NOTIFYs "
                  f"({sent / max(1, notifies):.1f} per NOTIFY), received {sum(x['events_received'] for x in relays)}, "
                  f"dropped {sum(x['dropped'] for x in relays)}, truncated {sum(x['truncated'] for x in relays)}")
    if "pg3" in results and "pg3-norelay" in results:
        a, b = results["pg3"], results["pg3-norelay"]
        print(f"event relay cost (pg x3 / pg x3 -relay): reg/s ratio {a['rate'] / b['rate']:.2f}, node CPU ms/reg "
              f"{a['cpu_ms_per_reg']['nodes']:.2f} vs {b['cpu_ms_per_reg']['nodes']:.2f}")
    if "sqlite" in results and "direct" in results:
        a, b = results["sqlite"], results["direct"]
        print(f"nginx cost (sqlite x1 / sqlite direct): reg/s ratio {a['rate'] / b['rate']:.2f}; nginx "
              f"{a['cpu_ms_per_reg']['nginx']:.2f} CPU ms/reg")
    if "pg1" in results and base:
        print(f"PostgreSQL store vs SQLite (pg x1 / sqlite x1): {results['pg1']['rate'] / base['rate']:.2f}")
    if args.profile and Path(args.profile_out).exists():
        print(f"\n{CONFIGS[args.profile][0]} first node's profile (py-spy, self time, top functions):")
        for share, fn in summarize_profile(args.profile_out):
            print(f"  {share:5.1f}%  {fn}")
        print("inclusive time by area:")
        for share, area in inclusive_shares(args.profile_out):
            print(f"  {share:5.1f}%  {area}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=3000)
    ap.add_argument("--window", type=int, default=64, help="requests in flight")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of: {', '.join(CONFIGS)}")
    ap.add_argument("--profile", nargs="?", const="pg1", default="", metavar="CONFIG",
                    help="py-spy the first node of CONFIG (default pg1), print its top self-time functions")
    ap.add_argument("--profile-out", default=str(Path(tempfile.gettempdir()) / "cluster-storm-profile.txt"))
    ap.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    args = ap.parse_args()
    if args.devices < 1 or args.devices > 100_000:
        raise SystemExit("--devices must be between 1 and 100000")
    if args.profile:
        if args.profile not in CONFIGS:
            raise SystemExit(f"--profile: unknown config {args.profile!r}; choose from {', '.join(CONFIGS)}")
        Path(args.profile_out).unlink(missing_ok=True)  # never report an older run's profile
    results = asyncio.run(main_async(args))
    report(results, args)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
