#!/usr/bin/env python3
"""Registration storm: how many LwM2M Registers/s the server takes, against two ceilings measured in the same run.

Three server processes are measured one after the other, each driven by a separate client process:

* ``full``  — the real ``LwM2MServer`` (``/rd`` parsing, registry, expiry heap, event bus, batched SQLite
  write-behind of the registration *and* an event-log row), inventory off unless ``--inventory``;
* ``pg``    — (``--modes full,pg,...``) the same full server on the PostgreSQL store (``--pg``: the server,
  127.0.0.1:5432 by default; the bench makes and drops its own database);
* ``bare``  — a bare aiocoap resource answering the same POST with 2.01 + Location-Path (aiocoap's ceiling);
* ``echo``  — a raw asyncio UDP echo (the event loop + socket ceiling);
* ``cpython-gc`` — (``--modes full,cpython-gc``) the full server with CPython's GC thresholds instead of the
  ``[server]`` GC policy: collections and pauses by generation of both are printed.

The client process hand-builds CoAP CON ``POST /rd?ep=...`` datagrams for N distinct endpoints from 64 UDP
sockets, keeps a bounded window of requests in flight, retransmits after 2 s, and records per-request latency.
Printed: registrations/s, p50/p99 latency, RSS per registered device (full server), ratios to the ceilings.

    python bench/registration_storm.py [--devices 10000] [--window 64] [--modes full,pg,bare,echo]
                                       [--inventory] [--profile] [--scale 100000]

``--scale N`` adds a second full-server storm of N devices: RSS per device at both sizes and the N-device rate
against the ``--devices`` rate (does the server hold its rate as the registry grows?). Mode ``pg`` runs the same
full server on the PostgreSQL store (``--pg``; the bench makes and drops its own database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOCKETS = 64
LINKS = b'</>;rt="oma.lwm2m";ct=11542,</1/0>,</3/0>,</5/0>,</32001/0>'


# ---- hand-built CoAP ---------------------------------------------------------------------------------------
def _opt(delta: int, value: bytes) -> bytes:
    def ext(v: int) -> tuple[int, bytes]:
        if v < 13:
            return v, b""
        if v < 269:
            return 13, bytes([v - 13])
        return 14, (v - 269).to_bytes(2, "big")

    d, dx = ext(delta)
    n, nx = ext(len(value))
    return bytes([d << 4 | n]) + dx + nx + value


def register_datagram(mid: int, token: bytes, endpoint: str) -> bytes:
    head = bytes([0x40 | len(token), 0x02, mid >> 8, mid & 0xFF]) + token
    opts = _opt(11, b"rd") + _opt(4, f"ep={endpoint}".encode()) + _opt(0, b"lt=86400") + _opt(0, b"b=U")
    return head + opts + b"\xff" + LINKS


# ---- servers -----------------------------------------------------------------------------------------------
async def serve(mode: str, data_dir: str, inventory: bool, dsn: str = "") -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if mode == "echo":

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.t.sendto(data, addr)  # type: ignore[attr-defined]

        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        print(f"READY {port}", flush=True)
        await stop.wait()
        return
    if mode == "bare":
        import aiocoap
        import aiocoap.resource as resource

        class Rd(resource.Resource):
            n = 0

            async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
                Rd.n += 1
                return aiocoap.Message(code=aiocoap.CREATED, location_path=("rd", str(Rd.n)))

        site = resource.Site()
        site.add_resource(("rd",), Rd())
        ctx = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", 0), transports=["udp6"])
        port = ctx.request_interfaces[0].token_interface.message_interface._local_port()  # type: ignore[attr-defined]
        print(f"READY {port}", flush=True)
        await stop.wait()
        await ctx.shutdown()
        return
    sys.path.insert(0, str(ROOT))
    from lwm2m_server.config import load_settings
    from lwm2m_server.gc_policy import start_gc_policy
    from lwm2m_server.logging import configure_logging
    from lwm2m_server.server import LwM2MServer

    configure_logging("warning", "json")
    overrides: dict[str, dict[str, Any]] = {"server": {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": data_dir}}
    if mode == "pg":  # the same full server on the PostgreSQL store
        overrides["store"] = {"backend": "postgres", "dsn": dsn}
    if mode == "cpython-gc":  # the same full server with CPython's GC thresholds (the baseline of the GC policy)
        overrides["server"].update(gc_threshold0=700, gc_full_interval_s=0.0)
    settings = load_settings(None, overrides=overrides)
    server = LwM2MServer(settings, inventory=inventory)
    await server.start()
    gc_policy, gc_task = start_gc_policy(settings.server)  # as `tinymlaas serve` does after start-up
    print(f"READY {server.coap_port}", flush=True)
    await stop.wait()
    await server.store.flush()
    writer = getattr(server.store, "writer", None)
    stats = {
        "registered": len(server.registry),
        "batches": getattr(writer, "batches_committed", 0),
        "writes": getattr(writer, "writes_committed", 0),
        "gc": gc_policy.stats(),
    }
    gc_task.cancel()
    gc_policy.restore()
    await server.stop()
    print("STATS " + json.dumps(stats), flush=True)


# ---- client ------------------------------------------------------------------------------------------------
async def storm(port: int, devices: int, window: int, prefix: str, echo: bool, sockets: int = SOCKETS
                ) -> dict[str, Any]:  # fmt: skip
    loop = asyncio.get_running_loop()
    pending: dict[tuple[int, int], tuple[float, bytes, int, asyncio.Future[float]]] = {}
    latencies: list[float] = []
    done_at: list[float] = []  # completion times, for the rate by decile of the storm

    class Client(asyncio.DatagramProtocol):
        def __init__(self, idx: int) -> None:
            self.idx = idx

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            if len(data) < 4:
                return
            mtype, code = (data[0] >> 4) & 3, data[1]
            mid = int.from_bytes(data[2:4], "big")
            if not echo and 1 <= code < 32:  # a request from the server (inventory): answer 4.04 piggybacked
                if mtype == 0:
                    tkl = data[0] & 0x0F
                    self.transport.sendto(bytes([0x60 | tkl, 0x84]) + data[2:4] + data[4 : 4 + tkl])  # type: ignore[attr-defined]
                return
            entry = pending.pop((self.idx, mid), None)
            if entry is not None and not entry[3].done():
                now = loop.time()
                entry[3].set_result(now - entry[0])
                done_at.append(now)

    clients = []
    for i in range(sockets):
        t, p = await loop.create_datagram_endpoint(lambda i=i: Client(i), remote_addr=("127.0.0.1", port))  # type: ignore[misc]
        clients.append((t, p))
    failures = 0
    mids = [random.randrange(0x10000) for _ in range(sockets)]

    async def one(n: int) -> None:
        nonlocal failures
        idx = n % sockets
        mid = mids[idx] = (mids[idx] + 1) & 0xFFFF
        dgram = register_datagram(mid, n.to_bytes(4, "big"), f"{prefix}-{n}")
        fut: asyncio.Future[float] = loop.create_future()
        t0 = loop.time()
        for attempt in range(5):
            pending[(idx, mid)] = (t0, dgram, attempt, fut)
            clients[idx][0].sendto(dgram)  # type: ignore[attr-defined]
            try:
                latencies.append(await asyncio.wait_for(asyncio.shield(fut), 2.0 * 2**attempt))
                return
            except TimeoutError:
                continue
        pending.pop((idx, mid), None)
        failures += 1

    # ``window`` workers, each with one request in flight: the client's own cost per request does not grow with
    # ``devices`` (100k tasks parked on a semaphore made the client, not the server, slow down at 100k).
    numbers = iter(range(devices))

    async def worker() -> None:
        for n in numbers:
            await one(n)

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(window)))
    elapsed = loop.time() - start
    for t, _ in clients:
        t.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "devices": devices,
        "decile_rates": decile_rates(done_at, start),
        "ok": len(latencies),
        "failed": failures,
        "seconds": elapsed,
        "rate": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def decile_rates(done_at: list[float], start: float) -> list[float]:
    """Registrations/s over each tenth of the storm's completions (the 10th: the registry 90-100% full)."""
    n = len(done_at)
    if n < 10:
        return []
    rates, t_prev = [], start
    for k in range(10):
        last = done_at[(k + 1) * n // 10 - 1]
        rates.append((((k + 1) * n // 10) - (k * n // 10)) / max(last - t_prev, 1e-9))
        t_prev = last
    return rates


# ---- orchestration -----------------------------------------------------------------------------------------
def run_mode(mode: str, args: argparse.Namespace, data_dir: str, devices: int | None = None) -> dict[str, Any]:
    import psutil

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, __file__, "--role", "server", "--mode", mode, "--data-dir", data_dir,
           "--store-dsn", args.store_dsn]
    if args.inventory:
        cmd.append("--inventory")
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert srv.stdout is not None
    line = srv.stdout.readline()
    if not line.startswith("READY"):
        srv.kill()
        raise SystemExit(f"{mode} server failed to start: {line!r}")
    port = int(line.split()[1])
    proc = psutil.Process(srv.pid)
    rss0 = proc.memory_info().rss
    prof = None
    if args.profile and mode in ("full", "pg") and shutil.which("py-spy"):
        prof = subprocess.Popen(
            ["py-spy", "record", "-p", str(srv.pid), "-r", "200", "-f", "raw", "-o", args.profile_out, "-d", "600"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
    client = subprocess.run(
        [
            sys.executable,
            __file__,
            "--role",
            "client",
            "--port",
            str(port),
            "--devices",
            str(devices or args.devices),
            "--window",
            str(args.window),
        ]
        + (["--echo"] if mode == "echo" else []),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, Any] = json.loads(client.stdout.strip().splitlines()[-1])
    time.sleep(0.5)
    result["rss_before_mb"] = rss0 / 2**20
    result["rss_after_mb"] = proc.memory_info().rss / 2**20
    result["rss_per_device_b"] = (proc.memory_info().rss - rss0) / max(1, result["ok"])
    if prof is not None:
        prof.send_signal(signal.SIGINT)
        prof.wait(30)
    srv.send_signal(signal.SIGTERM)
    out, _ = srv.communicate(timeout=120)
    for ln in out.splitlines():
        if ln.startswith("STATS "):
            result["server"] = json.loads(ln[6:])
    return result


IDLE_LEAVES = (
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "_worker (concurrent/futures/thread.py:81)",
    "select (selectors.py",
)


def summarize_profile(path: str, top: int = 18) -> list[tuple[float, str]]:
    """Self-time share per function from py-spy's raw (collapsed stacks) output, idle waits of the aiosqlite
    thread, the executor threads and the selector excluded (py-spy cannot always tell those are idle)."""
    counts: dict[str, int] = {}
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        leaf = stack.split(";")[-1]
        if any(leaf.startswith(idle) for idle in IDLE_LEAVES):
            continue
        counts[leaf] = counts.get(leaf, 0) + int(n)
        total += int(n)
    return [(100.0 * c / total, f) for f, c in sorted(counts.items(), key=lambda kv: -kv[1])[:top]]


async def _pg_database(admin_dsn: str, drop: str = "") -> str:
    """Create a fresh database for mode ``pg`` (returns its DSN), or drop the one named by ``drop``."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        if drop:
            await conn.execute(f'DROP DATABASE IF EXISTS "{drop.rsplit("/", 1)[1]}" WITH (FORCE)')
            return drop
        name = f"tinymlaas_storm_{random.randrange(1 << 30):x}"
        await conn.execute(f'CREATE DATABASE "{name}"')
        return admin_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=64, help="requests in flight")
    ap.add_argument("--modes", default="full,bare,echo")
    ap.add_argument("--scale", type=int, default=0, help="also storm the full server with this many devices")
    ap.add_argument("--inventory", action="store_true", help="full server also reads /3/0... (clients answer 4.04)")
    ap.add_argument("--profile", action="store_true", help="py-spy the full server, print top self-time functions")
    ap.add_argument("--profile-out", default=str(Path(tempfile.gettempdir()) / "storm-profile.txt"))
    ap.add_argument("--role", choices=["main", "server", "client"], default="main")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--sockets", type=int, default=SOCKETS, help="client sockets (device addresses) of the storm")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                    help="with mode pg: the PostgreSQL server (the bench makes and drops its own database)")
    ap.add_argument("--store-dsn", default="")
    args = ap.parse_args()
    if args.role == "server":
        asyncio.run(serve(args.mode, args.data_dir, args.inventory, args.store_dsn))
        return
    if args.role == "client":
        prefix = f"bench{random.randrange(1 << 30):x}"
        print(json.dumps(asyncio.run(storm(args.port, args.devices, args.window, prefix, args.echo, args.sockets))))
        return
    results: dict[str, dict[str, Any]] = {}
    modes = args.modes.split(",")
    if "pg" in modes:
        args.store_dsn = asyncio.run(_pg_database(args.pg))
    try:
        for mode in modes:  # each server its own data dir
            with tempfile.TemporaryDirectory(prefix="storm-") as tmp:
                results[mode] = run_mode(mode, args, tmp)
        if args.scale:
            with tempfile.TemporaryDirectory(prefix="storm-scale-") as tmp:
                results[f"full@{args.scale}"] = run_mode("full", args, tmp, devices=args.scale)
    finally:
        if args.store_dsn:
            asyncio.run(_pg_database(args.pg, drop=args.store_dsn))
    print(
        f"registration storm: {args.devices} devices, window {args.window}, {SOCKETS} client sockets, "
        f"{os.cpu_count()} CPUs, inventory {'on' if args.inventory else 'off'}"
    )
    print(f"{'server':<11} {'ok':>7} {'fail':>5} {'reg/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>8} {'B/dev':>7}")
    for mode, r in results.items():
        print(
            f"{mode:<11} {r['ok']:>7} {r['failed']:>5} {r['rate']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['rss_after_mb']:>8.1f} {r['rss_per_device_b']:>7.0f}"
        )
    for mode, r in results.items():
        if "gc" in r.get("server", {}):
            g = r["server"]["gc"]
            print(f"{mode:<11} GC: " + ", ".join(
                f"{gen} {v['count']} collections max {v['max_ms']:.1f} ms total {v['total_ms']:.0f} ms"
                for gen, v in g.items()))  # fmt: skip
    if "full" in results and "cpython-gc" in results and "server" in results["full"]:
        f, c = results["full"]["server"]["gc"], results["cpython-gc"]["server"]["gc"]
        longest = max(v["max_ms"] for v in f.values())
        base = max(v["max_ms"] for v in c.values())
        print(f"GC policy: longest pause {longest:.1f} ms vs {base:.1f} ms with CPython's thresholds "
              f"(ratio {longest / max(base, 1e-9):.2f}); reg/s ratio "
              f"{results['full']['rate'] / results['cpython-gc']['rate']:.2f}")
    if "pg" in results:
        p = results["pg"]
        if "server" in p:
            s = p["server"]
            print(f"pg server: {s['registered']} registrations held, {s['writes']} writes in {s['batches']} "
                  f"PostgreSQL transactions ({s['writes'] / max(1, s['batches']):.0f} writes/commit)")
        if "full" in results:
            print(f"pg / full (PostgreSQL / SQLite store): {p['rate'] / results['full']['rate']:.2f}")
    if "full" in results:
        f = results["full"]
        if "server" in f:
            s = f["server"]
            print(
                f"full server: {s['registered']} registrations held, {s['writes']} writes in {s['batches']} "
                f"SQLite transactions ({s['writes'] / max(1, s['batches']):.0f} writes/commit)"
            )
        for ceiling in ("bare", "echo"):
            if ceiling in results:
                print(f"full / {ceiling}: {f['rate'] / results[ceiling]['rate']:.2f}")
    scaled = results.get(f"full@{args.scale}")
    if scaled is not None and "full" in results:
        f = results["full"]
        print(
            f"scale: RSS/device {f['rss_per_device_b']:.0f} B at {f['ok']}, {scaled['rss_per_device_b']:.0f} B at "
            f"{scaled['ok']}; rate at {scaled['ok']} / rate at {f['ok']}: {scaled['rate'] / f['rate']:.2f}"
        )
        d = scaled.get("decile_rates") or []
        if d:  # within the one N-device storm: does the rate hold as the registry fills up?
            print(f"scale: within the {scaled['ok']}-device storm, reg/s by tenth: " + " ".join(f"{r:.0f}" for r in d)
                  + f"; last tenth / first tenth: {d[-1] / d[0]:.2f}, last tenth / the {f['ok']}-device storm: "
                  f"{d[-1] / f['rate']:.2f}")  # fmt: skip
    if "bare" in results and "echo" in results:
        print(f"bare / echo: {results['bare']['rate'] / results['echo']['rate']:.2f}")
    if args.profile and Path(args.profile_out).exists():
        print("\nfull server profile (py-spy, self time, top functions):")
        for share, fn in summarize_profile(args.profile_out):
            print(f"  {share:5.1f}%  {fn}")


if __name__ == "__main__":
    main()
