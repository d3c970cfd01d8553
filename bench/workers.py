#!/usr/bin/env python3
"""Several worker processes on one CoAP port (SO_REUSEPORT) against one process: which wins on this machine?

Each worker is a full ``LwM2MServer`` (fast path, registry, write-behind SQLite store of its own, so the most
favourable case for workers: no shared writer) bound to the same UDP port with SO_REUSEPORT. Linux picks the
socket by a hash of the datagram's 4-tuple, so one device address always reaches the same worker (a stable
device → worker mapping, as long as the device keeps its source port). The storm client of
``bench/registration_storm.py`` (64 sockets = 64 device addresses) registers ``--devices`` endpoints; the same
is done against a raw asyncio UDP echo (the socket ceiling) with the same worker counts.

The server refuses SO_REUSEPORT on purpose (``coap/udp.py``: two servers must never share a port by
accident), so this bench's worker sets it by swapping ``exclusive_socket`` in its own process only.

Printed: registrations/s per worker count, the 1-process baseline of the same run and the ratio, and the CPU
each process used (the client is a process too: on 2 cores, 2 workers + the client are 3 busy processes).

    python bench/workers.py [--devices 10000] [--workers 1,2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STORM = ROOT / "bench" / "registration_storm.py"


def reuseport_socket(host: str = "127.0.0.1", port: int = 0, *, rcvbuf: int | None = None) -> socket.socket:
    """``coap.udp.exclusive_socket`` with SO_REUSEPORT set before bind (the worker's only difference)."""
    sock = socket.socket(family=socket.AF_INET6, type=socket.SOCK_DGRAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((f"::ffff:{host}", port))
    return sock


async def worker(mode: str, port: int, data_dir: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if mode == "echo":

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.t.sendto(data, addr)  # type: ignore[attr-defined]

        sock = reuseport_socket(port=port)
        await loop.create_datagram_endpoint(Echo, sock=sock)
        print(f"READY {sock.getsockname()[1]}", flush=True)
        cpu0 = time.process_time()
        await stop.wait()
        print("STATS " + json.dumps({"cpu_s": time.process_time() - cpu0}), flush=True)
        return
    sys.path.insert(0, str(ROOT))
    from lwm2m_server.coap import udp
    from lwm2m_server.config import load_settings
    from lwm2m_server.gc_policy import start_gc_policy
    from lwm2m_server.logging import configure_logging
    from lwm2m_server.server import LwM2MServer

    udp.exclusive_socket = reuseport_socket  # this process only: see the module docstring
    configure_logging("warning", "json")
    settings = load_settings(None, overrides={"server": {"coap_host": "127.0.0.1", "coap_port": port,
                                                         "data_dir": data_dir}})  # fmt: skip
    server = LwM2MServer(settings, inventory=False)
    await server.start()
    gc_policy, gc_task = start_gc_policy(settings.server)
    print(f"READY {server.coap_port}", flush=True)
    cpu0 = time.process_time()
    await stop.wait()
    await server.store.flush()
    cpu_s = time.process_time() - cpu0  # the storm's CPU (start-up excluded)
    registered = len(server.registry)
    gc_task.cancel()
    gc_policy.restore()
    await server.stop()
    print("STATS " + json.dumps({"registered": registered, "cpu_s": cpu_s}), flush=True)


def run(mode: str, workers: int, devices: int, window: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="workers-") as tmp:
        port = 0
        try:
            for i in range(workers):
                data_dir = Path(tmp) / f"w{i}"
                data_dir.mkdir()
                p = subprocess.Popen([sys.executable, __file__, "--role", "worker", "--mode", mode, "--port",
                                      str(port), "--data-dir", str(data_dir)], stdout=subprocess.PIPE, text=True,
                                     env=env)  # fmt: skip
                procs.append(p)
                assert p.stdout is not None
                line = p.stdout.readline()
                if not line.startswith("READY"):
                    raise SystemExit(f"worker {i} failed to start: {line!r}")
                port = int(line.split()[1])
            client = subprocess.run([sys.executable, str(STORM), "--role", "client", "--port", str(port),
                                     "--devices", str(devices), "--window", str(window)]
                                    + (["--echo"] if mode == "echo" else []),
                                    capture_output=True, text=True, env=env, check=True)  # fmt: skip
            result: dict[str, Any] = json.loads(client.stdout.strip().splitlines()[-1])
        finally:
            stats = []
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                out, _ = p.communicate(timeout=120)
                stats += [json.loads(ln[6:]) for ln in out.splitlines() if ln.startswith("STATS ")]
    result["workers"] = stats
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (the first is the baseline)")
    ap.add_argument("--modes", default="full,echo")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (the best is printed)")
    ap.add_argument("--role", choices=["main", "worker"], default="main")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--data-dir", default="")
    args = ap.parse_args()
    if args.role == "worker":
        asyncio.run(worker(args.mode, args.port, args.data_dir))
        return
    counts = [int(n) for n in args.workers.split(",")]
    print(f"SO_REUSEPORT workers: {args.devices} devices, window {args.window}, 64 client sockets, "
          f"{os.cpu_count()} CPUs, best of {args.repeat}")  # fmt: skip
    print(f"{'server':<6} {'workers':>7} {'ok':>7} {'reg/s':>9} {'p99 ms':>8} {'per-worker registered':>24} "
          f"{'worker CPU s':>14}")  # fmt: skip
    for mode in args.modes.split(","):
        best: dict[int, dict[str, Any]] = {}
        for n in counts:
            for _ in range(args.repeat):
                r = run(mode, n, args.devices, args.window)
                if n not in best or r["rate"] > best[n]["rate"]:
                    best[n] = r
            r = best[n]
            spread = "/".join(str(w.get("registered", "-")) for w in r["workers"])
            cpu = "/".join(f"{w['cpu_s']:.1f}" for w in r["workers"])
            print(f"{mode:<6} {n:>7} {r['ok']:>7} {r['rate']:>9.0f} {r['p99_ms']:>8.1f} {spread:>24} {cpu:>14}")
        base = best[counts[0]]["rate"]
        for n in counts[1:]:
            print(f"{mode}: {n} workers / {counts[0]} worker (same run): {best[n]['rate']:.0f} / {base:.0f} reg/s "
                  f"= {best[n]['rate'] / base:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
