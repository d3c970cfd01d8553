#!/usr/bin/env python3
"""REST read latency under load: does the event loop stay responsive while a registration storm and a rollout run?

Everything real and in separate processes: ``tinymlaas serve`` (CoAP + OTA + rollouts + REST), a ``tinymlaas sim``
fleet of ``--fleet`` devices, and the registration storm client of ``bench/registration_storm.py``. A reader keeps
one ``GET /api/devices/{ep}`` in flight at a time, ``--rate`` per second, and records each latency:

* ``idle``: the server with the fleet registered and nothing else happening (the baseline of this run);
* ``load``: while ``--storm`` new devices register as fast as the storm client can and an OTA of a signed
  ~50 KB package (push or pull as each device prefers) runs on the whole fleet at once.

Printed: p50/p99/max of both, the p99 ratio, the storm's registrations/s and the rollout's outcome; the goal is a
loaded p99 under 50 ms.

    python bench/rest_latency.py [--storm 10000] [--fleet 100] [--rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TINYMLAAS = [sys.executable, "-m", "lwm2m_server.cli"]
KWS = Path("/work/shared/models/mlperf-tiny/kws_ref_model.tflite")
GOAL_P99_MS = 50.0
FLEET_TOML = """
[fleet]
endpoint_prefix = "lat"
stagger_ms = 2
seed = 1

[defaults]
lifetime = 3600
lwm2m_version = "1.1"
binding = "U"
delivery = "both"
block_size = 1024

[[profiles]]
name = "m4f"
count = 1
cpu = "cortex-m4f"
fpu = true
ram_total = 262144
ram_free_ml = 163840
flash_total = 1048576
flash_free = 524288
max_package = 524288
"""


def start_server(data_dir: Path, stall_ms: float, nice: int = 0, own_session: bool = False
                 ) -> tuple[subprocess.Popen[str], int, int, str]:  # fmt: skip
    env = dict(os.environ, TINYMLAAS_LOGGING__LEVEL="warning", TINYMLAAS_LOGGING__FORMAT="json",
               TINYMLAAS_OTA__POLL_INTERVAL_S="3", TINYMLAAS_OTA__TIMEOUT_S="600",
               TINYMLAAS_SERVER__LOOP_STALL_LOG_MS=str(stall_ms),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))  # fmt: skip
    proc = subprocess.Popen(
        [*TINYMLAAS, "serve", "--coap-port", "0", "--http-port", "0", "--coap-host", "127.0.0.1",
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=(data_dir / "server.log").open("w"), text=True, env=env, cwd=ROOT,
        preexec_fn=(lambda: os.setpriority(os.PRIO_PROCESS, 0, nice)) if nice else None,
        start_new_session=own_session,
    )  # fmt: skip
    assert proc.stdout is not None
    token = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ADMIN_TOKEN "):
            token = line.split()[1]
        m = re.match(r"READY coap=(\d+) http=(\d+)", line)
        if m:
            return proc, int(m.group(1)), int(m.group(2)), token
    proc.kill()
    raise RuntimeError("server did not start")


def build_package(data_dir: Path) -> tuple[bytes, str]:
    from compilers import keys, package
    from compilers.arena import plan_arena

    key = keys.load_or_create_signing_key(data_dir)
    tflite = KWS.read_bytes()
    blob = package.build_package(name="kws", version="2", variant="int8", arena_bytes=plan_arena(tflite).total_bytes,
                                 payload=tflite, signing_key=key)  # fmt: skip
    return blob, bytes(keys.public_key_bytes(key)).hex()


async def wait_registered(client: httpx.AsyncClient, prefix: str, n: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        page = (await client.get("/api/devices", params={"limit": 1000, "q": prefix})).json()
        items = [d["endpoint"] for d in page["items"] if d["endpoint"].startswith(prefix)]
        if len(items) >= n:
            return sorted(items)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(items)}/{n} fleet devices registered")
        await asyncio.sleep(0.5)


async def read_latencies(client: httpx.AsyncClient, endpoint: str, rate: float, until: Any) -> list[float]:
    """One GET at a time, ``rate`` per second, until ``until()`` is true; latencies in ms (non-200 raises)."""
    out: list[float] = []
    period = 1.0 / rate
    while not until():
        t0 = time.perf_counter()
        r = await client.get(f"/api/devices/{endpoint}")
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET /api/devices/{endpoint} -> {r.status_code} {r.text[:200]}")
        await asyncio.sleep(max(0.0, period - (time.perf_counter() - t0)))
    return out


async def run_rollout(client: httpx.AsyncClient, sha: str, fleet: list[str]) -> dict[str, Any]:
    """OTA of the package to every fleet device at once (``POST /api/devices/{ep}/update``), until all ended.
    (Rollouts now accept ``package:<sha256>`` too; the bench keeps driving the OTA jobs directly so its figures
    stay comparable with the first round's.)"""
    for ep in fleet:
        r = await client.post(f"/api/devices/{ep}/update", json={"package": sha})
        r.raise_for_status()
    outcome: dict[str, int] = {}
    pending = set(fleet)
    while pending:
        await asyncio.sleep(0.5)
        for ep in list(pending):
            job = (await client.get(f"/api/devices/{ep}/update")).json()["job"]
            if job and job["phase"] in ("succeeded", "failed", "cancelled"):
                outcome[job["phase"]] = outcome.get(job["phase"], 0) + 1
                pending.discard(ep)
    return {"state": "done", "counts": outcome}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


async def main_async(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-rest-"))
    blob, key_hex = build_package(data_dir)
    fleet_file = data_dir / "fleet.toml"
    fleet_file.write_text(FLEET_TOML)
    own = args.sessions == "own"
    server, coap, http, token = start_server(data_dir, args.stall_ms, args.server_nice, own)
    log_file = data_dir / "server.log"
    procs: list[subprocess.Popen[Any]] = []
    try:
        procs.append(subprocess.Popen(
            [*TINYMLAAS, "sim", "--server", f"coap://127.0.0.1:{coap}", "--fleet", str(fleet_file), "--devices",
             str(args.fleet), "--public-key", key_hex, "--prefix", "lat"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=own))  # fmt: skip
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", headers=headers, timeout=60) as client:
            fleet = await wait_registered(client, "lat", args.fleet, 120)
            r = await client.post("/api/packages", params={"kind": "model"}, content=blob,
                                  headers={"Content-Type": "application/octet-stream"})  # fmt: skip
            r.raise_for_status()
            sha = r.json()["sha256"]
            target = fleet[0]
            await read_latencies(client, target, args.rate, _after(1.0))  # warm-up
            idle = await read_latencies(client, target, args.rate, _after(args.idle_s))

            if args.profile:
                procs.append(subprocess.Popen(
                    ["py-spy", "record", "-p", str(server.pid), "-r", "100", "-f", "raw", "-o", args.profile, "-d",
                     str(int(args.max_s))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            t0 = time.monotonic()
            cpu0, wait0 = cpu_seconds(server.pid), run_queue_wait_s(server.pid)
            log_from = log_file.stat().st_size
            storm = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "registration_storm.py"), "--role", "client", "--port",
                 str(coap), "--devices", str(args.storm), "--window", "64", "--sockets", str(args.sockets)],
                stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=own)  # fmt: skip
            procs.append(storm)
            rollout = asyncio.create_task(run_rollout(client, sha, fleet))

            def done() -> bool:
                return (storm.poll() is not None and rollout.done()) or time.monotonic() - t0 > args.max_s

            loaded = await read_latencies(client, target, args.rate, done)
            load_s = time.monotonic() - t0
            server_cpu, server_wait = cpu_seconds(server.pid) - cpu0, run_queue_wait_s(server.pid) - wait0
            stalls = read_stalls(log_file, log_from, log_file.stat().st_size)
            status = await rollout if rollout.done() else {"state": "still running"}
            rollout.cancel()
            out, _ = storm.communicate(timeout=120)
            storm_result = json.loads(out.strip().splitlines()[-1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"REST read latency: GET /api/devices/{{ep}}, one in flight, {args.rate:g}/s; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}"
          + (f", server at nice {args.server_nice}" if args.server_nice else ""))  # fmt: skip
    print(f"{'phase':<6} {'reads':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, lat in (("idle", idle), ("load", loaded)):
        print(f"{name:<6} {len(lat):>6} {pct(lat, 0.5):>8.2f} {pct(lat, 0.99):>8.2f} {max(lat):>8.2f}")
    print(f"load: storm {storm_result['ok']}/{args.storm} registered at {storm_result['rate']:.0f}/s "
          f"(p99 {storm_result['p99_ms']:.1f} ms); OTA of {len(fleet)} devices {status.get('state')} "
          f"{status.get('counts')} ({load_s:.1f} s of load)")  # fmt: skip
    print(f"server CPU in the loaded phase: {server_cpu:.1f} s ({100 * server_cpu / load_s:.0f}% of one core); its "
          f"event-loop thread waited {server_wait:.1f} s runnable on the run queue ({100 * server_wait / load_s:.0f}% "
          f"of the phase: CPU the machine did not give it)")  # fmt: skip
    if args.stall_ms > 0:
        print_stalls(stalls, args.stall_ms, load_s)
    p99 = pct(loaded, 0.99)
    print(f"loaded p99 / idle p99: {p99 / pct(idle, 0.99):.2f}; goal p99 < {GOAL_P99_MS:g} ms: "
          f"{'met' if p99 < GOAL_P99_MS else 'NOT met'}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_queue_wait_s(pid: int) -> float:
    """How long the process's main thread (the event loop) has been runnable but not running, from schedstat."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def read_stalls(log_file: Path, start: int, end: int) -> list[dict[str, Any]]:
    """The server's ``event_loop_stall`` lines logged between two offsets of its log (the loaded phase)."""
    with log_file.open("rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    out = []
    for line in text.splitlines():
        if '"event_loop_stall"' in line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def stall_site(samples: list[list[str]]) -> str:
    """Where a stall was: the innermost project frame of its first sample (else the innermost frame)."""
    if not samples:
        return "(no sample: stall shorter than the sampling period)"
    frames = samples[0]
    ours = [f for f in frames if f"{ROOT}/" in f and "/.venv/" not in f]
    return (ours or frames)[-1].replace(f"{ROOT}/", "")


def print_stalls(stalls: list[dict[str, Any]], stall_ms: float, load_s: float) -> None:
    lags = [float(s["lag_ms"]) for s in stalls]
    window = sum(float(s["window_ms"]) for s in stalls)
    busy = sum(float(s["busy_ms"]) for s in stalls)
    others = sum(float(s["process_ms"]) for s in stalls) - busy
    print(f"event loop stalls >= {stall_ms:g} ms in the loaded phase: {len(lags)}, "
          f"{sum(lags):.0f} ms in all ({sum(lags) / (10 * load_s):.1f}% of {load_s:.0f} s), "
          f"max {max(lags, default=0):.0f} ms; in those windows the loop thread ran "
          f"{100 * busy / max(window, 1):.0f}% of the time, its other threads {100 * others / max(window, 1):.0f}% "
          f"(the rest: no CPU for the process)")  # fmt: skip
    by_site: dict[str, list[float]] = {}
    for s, lag in zip(stalls, lags, strict=True):
        by_site.setdefault(stall_site(s.get("samples") or []), []).append(lag)
    for site, site_lags in sorted(by_site.items(), key=lambda kv: -sum(kv[1]))[:8]:
        print(f"  {len(site_lags):>4} stalls {sum(site_lags):>7.0f} ms  max {max(site_lags):>5.0f}  {site}")


def _after(seconds: float) -> Any:
    end = time.monotonic() + seconds
    return lambda: time.monotonic() > end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storm", type=int, default=10_000, help="devices in the registration storm")
    ap.add_argument("--sockets", type=int, default=64,
                    help="storm client sockets: each is one device address (aiocoap serialises requests per address)")
    ap.add_argument("--fleet", type=int, default=100, help="simulated devices the rollout updates")
    ap.add_argument("--rate", type=float, default=50.0, help="REST reads per second")
    ap.add_argument("--idle-s", type=float, default=5.0)
    ap.add_argument("--profile", default="", help="py-spy the server during the loaded phase (raw output file)")
    ap.add_argument("--stall-ms", type=float, default=10.0,
                    help="server logs event-loop stalls this long with sampled stacks (0 = off); summarised")
    ap.add_argument("--server-nice", type=int, default=0,
                    help="diagnosis only: run the server at this nice value (negative needs root), to tell CPU "
                         "competition from the machine's other processes apart from time the server's loop spends")
    ap.add_argument("--sessions", choices=["shared", "own"], default="shared",
                    help="shared: the server, fleet and storm client run in the bench's session (one autogroup: "
                         "the kernel gives them one CPU share of the machine to divide); own: a session each, "
                         "as a daemon and remote devices would be (each its own share)")
    ap.add_argument("--max-s", type=float, default=180.0, help="stop the loaded phase after this long")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
