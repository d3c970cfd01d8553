"""Fleet rollout: time to roll a model out to N simulated devices through the rollout engine, and devices/s.

Everything real and in separate processes: ``tinymlaas serve`` (Application: CoAP + OTA + rollouts + REST) and
``tinymlaas sim`` fleets (``--procs`` processes, N devices in total, mixed hardware from the fleet file). The
fleet is split in two halves of the same mix, measured one after the other in the same run:

* baseline: every device of half A gets ``POST /api/devices/{ep}/update {"model": ...}`` directly, with the same
  concurrency cap, and we wait until every job is confirmed (or finally failed) — OTA with no rollout engine;
* rollout: half B gets one rollout (``POST /api/rollouts``, waves, the same max concurrency) and we wait for it.

The ratio is rollout devices/s over direct-OTA devices/s: what waves, thresholds and bookkeeping cost.

    python bench/rollout_fleet.py --devices 1000 --procs 4 --concurrency 100
"""

from __future__ import annotations

import argparse
import asyncio
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
FLEET_TOML = """
[fleet]
endpoint_prefix = "bench"
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
count = 4
cpu = "cortex-m4f"
fpu = true
ram_total = 262144
ram_free_ml = 163840
flash_total = 1048576
flash_free = 524288
max_package = 524288

[[profiles]]
name = "m0p"
count = 3
cpu = "cortex-m0plus"
fpu = false
ram_total = 65536
ram_free_ml = 40960
flash_total = 262144
flash_free = 131072
max_package = 131072
delivery = "pull"
block_size = 512

[[profiles]]
name = "v10"
count = 2
lwm2m_version = "1.0"
cpu = "cortex-m4"
fpu = true
ram_total = 196608
ram_free_ml = 98304
flash_total = 1048576
flash_free = 393216
max_package = 393216
delivery = "push"
"""


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], int, int, str]:
    """The server on a fresh data dir, its ports and the admin token its first start prints (ADMIN_TOKEN line)."""
    env = dict(os.environ, TINYMLAAS_LOGGING__LEVEL="warning", TINYMLAAS_LOGGING__FORMAT="json",
               TINYMLAAS_OTA__POLL_INTERVAL_S="3", TINYMLAAS_OTA__TIMEOUT_S="600")
    proc = subprocess.Popen(
        [*TINYMLAAS, "serve", "--coap-port", "0", "--http-port", "0", "--coap-host", "127.0.0.1",
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT,
    )
    assert proc.stdout is not None
    token = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ADMIN_TOKEN "):
            token = line.split()[1]
        m = re.match(r"READY coap=(\d+) http=(\d+)", line)
        if m:
            if not token:
                proc.kill()
                raise RuntimeError("server printed no ADMIN_TOKEN line (the data dir must be fresh)")
            return proc, int(m.group(1)), int(m.group(2)), token
    proc.kill()
    raise RuntimeError("server did not start")


def start_fleets(coap: int, n: int, procs: int, fleet_file: Path, key_hex: str, prefix: str) -> list[Any]:
    per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    return [
        subprocess.Popen(
            [*TINYMLAAS, "sim", "--server", f"coap://127.0.0.1:{coap}", "--fleet", str(fleet_file), "--devices",
             str(k), "--public-key", key_hex, "--prefix", f"{prefix}{i}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
        )
        for i, k in enumerate(per) if k
    ]


async def wait_registered(client: httpx.AsyncClient, prefix: str, n: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        items: list[str] = []
        offset = 0
        while True:
            page = (await client.get("/api/devices", params={"limit": 1000, "offset": offset})).json()
            items += [d["endpoint"] for d in page["items"] if d["endpoint"].startswith(prefix)]
            offset += 1000
            if offset >= page["total"]:
                break
        if len(items) >= n:
            return sorted(items)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(items)}/{n} registered")
        await asyncio.sleep(1.0)


async def direct_ota(client: httpx.AsyncClient, endpoints: list[str], model: str, concurrency: int) -> dict[str, int]:
    gate = asyncio.Semaphore(concurrency)
    outcome: dict[str, int] = {}

    async def one(ep: str) -> None:
        async with gate:
            r = await client.post(f"/api/devices/{ep}/update", json={"model": model})
            if r.status_code != 202:
                outcome[f"refused {r.status_code}"] = outcome.get(f"refused {r.status_code}", 0) + 1
                return
            while True:
                await asyncio.sleep(1.0)
                job = (await client.get(f"/api/devices/{ep}/update")).json()["job"]
                if job and job["phase"] in ("succeeded", "failed", "cancelled"):
                    outcome[job["phase"]] = outcome.get(job["phase"], 0) + 1
                    return

    await asyncio.gather(*(one(ep) for ep in endpoints))
    return outcome


async def rollout(client: httpx.AsyncClient, endpoints: list[str], model: str, concurrency: int) -> dict[str, Any]:
    body = {"model": model, "endpoints": endpoints, "waves": "10%,50%,100%", "max_concurrency": concurrency,
            "error_threshold_pct": 50, "start": True}
    r = await client.post("/api/rollouts", json=body)
    r.raise_for_status()
    rid = r.json()["id"]
    while True:
        await asyncio.sleep(1.0)
        status = (await client.get(f"/api/rollouts/{rid}", params={"limit": 1})).json()
        if status["state"] not in ("created", "running"):
            return status


async def main_async(args: argparse.Namespace) -> None:
    from compilers import keys

    data_dir = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    key_hex = bytes(keys.public_key_bytes(keys.load_or_create_signing_key(data_dir))).hex()
    fleet_file = data_dir / "fleet.toml"
    fleet_file.write_text(FLEET_TOML)
    server, coap, http, token = start_server(data_dir)
    fleets: list[Any] = []
    try:
        half = 0 if args.no_baseline else args.devices // 2
        procs_a = 0 if args.no_baseline else max(1, args.procs // 2)
        fleets = start_fleets(coap, half, procs_a, fleet_file, key_hex, "a") if half else []
        fleets += start_fleets(coap, args.devices - half, max(1, args.procs - procs_a), fleet_file, key_hex, "b")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", headers=headers, timeout=60) as client:
            t0 = time.monotonic()
            a = await wait_registered(client, "a", half, 300) if half else []
            b = await wait_registered(client, "b", args.devices - half, 300)
            print(f"{len(a) + len(b)} devices registered in {time.monotonic() - t0:.1f} s")
            # Warm the compile cache for every class first, so neither phase pays for training.
            t0 = time.monotonic()
            await client.post(f"/api/models/{args.model}/plan", params={"filter": ""}, timeout=600)
            print(f"compiled {args.model} for every class in {time.monotonic() - t0:.1f} s")

            t0 = time.monotonic()
            outcome = await direct_ota(client, a, args.model, args.concurrency) if a else {}
            direct_s = time.monotonic() - t0
            t0 = time.monotonic()
            status = await rollout(client, b, args.model, args.concurrency)
            rollout_s = time.monotonic() - t0
    finally:
        for p in fleets:
            p.send_signal(signal.SIGINT)
        for p in fleets:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    rollout_rate = len(b) / rollout_s
    if a:
        direct_rate = len(a) / direct_s
        print(f"baseline direct OTA : {len(a):5d} devices in {direct_s:7.1f} s = {direct_rate:6.2f} devices/s  "
              f"{outcome}")
    print(f"rollout (3 waves)   : {len(b):5d} devices in {rollout_s:7.1f} s = {rollout_rate:6.2f} devices/s  "
          f"{status['state']} {status['counts']}")
    if a:
        print(f"rollout / direct    : {rollout_rate / direct_rate:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--model", default="digits-cnn")
    ap.add_argument("--no-baseline", action="store_true", help="roll out to the whole fleet; skip the direct-OTA half")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
