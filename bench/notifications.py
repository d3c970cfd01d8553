#!/usr/bin/env python3
"""Inbound Observe notifications: how many notifications/s the server delivers, fast path on vs aiocoap.

Two server processes are measured one after the other, each driven by a separate device process:

* ``fast``    — the real ``LwM2MServer`` with ``[server] coap_fast_path = true`` (the default);
* ``aiocoap`` — the same server with ``coap_fast_path = false`` (the baseline: everything through aiocoap).

The server (inventory off) observes ``/3/0/9`` of every device as it registers (``DeviceClient.observe``, as the
REST API and the inventory do) and counts its own ``notification`` events. The device process hand-builds CoAP
from one UDP socket per device: it registers N devices (``lwm2m=1.1``, so text/plain is negotiated), answers the
server's observe GET with a piggybacked 2.05 (Observe 1), then every device sends notifications on that token
with an incrementing Observe number, alternately NON and CON (retransmitted after 2 s until ACKed); a device
waits for the ACK of its CON before its next pair, so ``--window`` devices are in flight at once.

Printed: notifications/s the server delivered (its notification events over the time from its first to its last
one) and the server process's CPU time per notification over the same span (less sensitive to a busy machine and
to the device process being the bottleneck), for both modes, and the ratios fast / aiocoap.

    python bench/notifications.py [--devices 200] [--per-device 200] [--window 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lwm2m_server.protocol import coapmsg as m  # noqa: E402

LINKS = b'</>;rt="oma.lwm2m",</1/0>,</3/0>'
OBSERVE, CONTENT_FORMAT = 6, m.CONTENT_FORMAT


# ---- the devices' datagrams (the project's sans-IO codec: the same bytes a hand-built encoder would give) -----
def register_datagram(mid: int, token: bytes, endpoint: str) -> bytes:
    query = [(m.URI_QUERY, q.encode()) for q in (f"ep={endpoint}", "lt=86400", "lwm2m=1.1", "b=U")]
    return m.encode(m.CON, m.POST, mid, token, [(m.URI_PATH, b"rd"), *query], LINKS)


def content_datagram(mtype: int, mid: int, token: bytes, observe: int, value: int) -> bytes:
    """A 2.05 Content (text/plain) with an Observe option: ``mtype`` 0 CON, 1 NON, 2 ACK (piggybacked)."""
    options = [(OBSERVE, m.uint_option(observe)), (CONTENT_FORMAT, b"")]
    return m.encode(mtype, 0x45, mid, token, options, str(value).encode())


def parse_head(data: bytes) -> tuple[int, int, int, bytes]:
    """(type, code, MID, token) of a datagram."""
    tkl = data[0] & 0x0F
    return (data[0] >> 4) & 3, data[1], int.from_bytes(data[2:4], "big"), data[4 : 4 + tkl]


# ---- server ------------------------------------------------------------------------------------------------
async def serve(mode: str, data_dir: str) -> None:
    sys.path.insert(0, str(ROOT))
    from lwm2m_server.config import load_settings
    from lwm2m_server.events import Event
    from lwm2m_server.logging import configure_logging
    from lwm2m_server.server import LwM2MServer

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    configure_logging("warning", "json")
    srv = {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": data_dir, "coap_fast_path": mode == "fast"}
    settings = load_settings(None, overrides={"server": srv})
    server = LwM2MServer(settings, inventory=False)
    counts = {"notifications": 0, "observed": 0, "observe_failed": 0}
    first_last = [0.0, 0.0]
    cpu = [0.0, 0.0]  # the server process's CPU time at its first and last notification
    tasks: set[asyncio.Task[None]] = set()

    async def observe(endpoint: str) -> None:
        try:
            await server.client.observe(endpoint, "/3/0/9", owner="bench")
            counts["observed"] += 1
        except Exception:
            counts["observe_failed"] += 1

    def sink(event: Event) -> None:
        if event.type == "notification":
            now = loop.time()
            if not counts["notifications"]:
                first_last[0], cpu[0] = now, time.process_time()
            first_last[1], cpu[1] = now, time.process_time()
            counts["notifications"] += 1
        elif event.type == "registered" and event.endpoint is not None:
            task = loop.create_task(observe(event.endpoint))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server.events.add_sink(sink)
    await server.start()
    print(f"READY {server.coap_port}", flush=True)
    await stop.wait()
    await server.stop()
    stats = {**counts, "seconds": first_last[1] - first_last[0], "cpu_s": cpu[1] - cpu[0]}
    print("STATS " + json.dumps(stats), flush=True)


# ---- devices -----------------------------------------------------------------------------------------------
async def devices(port: int, n: int, per_device: int, window: int, prefix: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    resets = [0]

    class Device(asyncio.DatagramProtocol):
        def __init__(self, idx: int) -> None:
            self.idx = idx
            self.mid = random.randrange(0x10000)
            self.token = b""
            self.observed: asyncio.Future[None] = loop.create_future()
            self.waiting: dict[int, asyncio.Future[None]] = {}

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

        def next_mid(self) -> int:
            self.mid = (self.mid + 1) & 0xFFFF
            return self.mid

        def datagram_received(self, data: bytes, addr: Any) -> None:
            if len(data) < 4:
                return
            mtype, code, mid, token = parse_head(data)
            if code == 0x01 and mtype == 0:  # the server's observe GET (CON): 2.05 piggybacked, Observe 1
                self.token = token
                self.transport.sendto(content_datagram(2, mid, token, 1, 100))
                if not self.observed.done():
                    self.observed.set_result(None)
                return
            if mtype in (2, 3):  # ACK (of the Register or of a notification) or RST
                resets[0] += mtype == 3
                fut = self.waiting.pop(mid, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)

        async def confirm(self, dgram_for: Any) -> bool:
            mid = self.next_mid()
            dgram = dgram_for(mid)
            fut: asyncio.Future[None] = loop.create_future()
            self.waiting[mid] = fut
            for attempt in range(5):
                self.transport.sendto(dgram)
                try:
                    await asyncio.wait_for(asyncio.shield(fut), 2.0 * 2**attempt)
                    return True
                except TimeoutError:
                    continue
            self.waiting.pop(mid, None)
            return False

    devs: list[Device] = []
    for i in range(n):
        _, p = await loop.create_datagram_endpoint(lambda i=i: Device(i), remote_addr=("127.0.0.1", port))  # type: ignore[misc]
        devs.append(p)
    sem = asyncio.Semaphore(window)

    async def register(d: Device) -> None:
        async with sem:
            await d.confirm(lambda mid: register_datagram(mid, d.idx.to_bytes(4, "big"), f"{prefix}-{d.idx}"))
        await asyncio.wait_for(d.observed, 30)

    await asyncio.gather(*(register(d) for d in devs))
    failed = 0
    sent = 0

    async def notify(d: Device) -> None:
        nonlocal failed, sent
        observe = 1
        for i in range(per_device // 2):
            observe += 1
            d.transport.sendto(content_datagram(1, d.next_mid(), d.token, observe, i))  # NON
            observe += 1
            ok = await d.confirm(lambda mid, o=observe, i=i: content_datagram(0, mid, d.token, o, i))  # CON
            sent += 2
            failed += not ok

    queue = iter(devs)

    async def worker() -> None:
        for d in queue:
            await notify(d)

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(window)))
    elapsed = loop.time() - start
    for d in devs:
        d.transport.close()
    return {"sent": sent, "con_failed": failed, "resets": resets[0], "seconds": elapsed}


# ---- orchestration -----------------------------------------------------------------------------------------
def run_mode(mode: str, args: argparse.Namespace, data_dir: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    srv = subprocess.Popen(
        [sys.executable, __file__, "--role", "server", "--mode", mode, "--data-dir", data_dir],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert srv.stdout is not None
    line = srv.stdout.readline()
    if not line.startswith("READY"):
        srv.kill()
        raise SystemExit(f"{mode} server failed to start: {line!r}")
    cmd = [sys.executable, __file__, "--role", "devices", "--port", line.split()[1], "--devices", str(args.devices),
           "--per-device", str(args.per_device), "--window", str(args.window)]  # fmt: skip
    dev = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, timeout=600)
    result: dict[str, Any] = json.loads(dev.stdout.strip().splitlines()[-1])
    srv.send_signal(signal.SIGTERM)
    out, _ = srv.communicate(timeout=120)
    for ln in out.splitlines():
        if ln.startswith("STATS "):
            result["server"] = json.loads(ln[6:])
    s = result.get("server", {})
    n = s.get("notifications", 0)
    result["rate"] = n / s["seconds"] if s.get("seconds") else float("nan")
    result["cpu_us"] = 1e6 * s.get("cpu_s", 0.0) / n if n > 1 else float("nan")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--per-device", type=int, default=200, help="notifications per device (half NON, half CON)")
    ap.add_argument("--window", type=int, default=64, help="devices sending at once (each one CON in flight)")
    ap.add_argument("--modes", default="fast,aiocoap")
    ap.add_argument("--role", choices=["main", "server", "devices"], default="main")
    ap.add_argument("--mode", default="fast")
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    if args.role == "server":
        asyncio.run(serve(args.mode, args.data_dir))
        return
    if args.role == "devices":
        prefix = f"notif{random.randrange(1 << 30):x}"
        print(json.dumps(asyncio.run(devices(args.port, args.devices, args.per_device, args.window, prefix))))
        return
    results: dict[str, dict[str, Any]] = {}
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix="notif-") as tmp:
            results[mode] = run_mode(mode, args, tmp)
    print(f"notifications: {args.devices} devices x {args.per_device} (NON/CON alternating), window {args.window}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"{'server':<8} {'observed':>8} {'sent':>8} {'delivered':>9} {'CON fail':>8} {'RST':>5} {'notif/s':>9} "
          f"{'CPU us/notif':>12}")  # fmt: skip
    for mode, r in results.items():
        s = r.get("server", {})
        print(f"{mode:<8} {s.get('observed', 0):>8} {r['sent']:>8} {s.get('notifications', 0):>9} "
              f"{r['con_failed']:>8} {r['resets']:>5} {r['rate']:>9.0f} {r['cpu_us']:>12.1f}")  # fmt: skip
    if "fast" in results and "aiocoap" in results:
        f, a = results["fast"], results["aiocoap"]
        print(f"fast / aiocoap (notifications/s): {f['rate'] / a['rate']:.2f}; "
              f"server CPU per notification aiocoap / fast: {a['cpu_us'] / f['cpu_us']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
