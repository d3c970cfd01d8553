"""OTA fan-out: deliver and confirm a ~50 KB signed model package on N simulated devices, push and pull.

The server (LwM2MServer + OtaService) runs in this process; the devices run in ``--procs`` worker processes
(``--devices`` in total), each a real SimulatedDevice that verifies the signature and installs the model into the
real TFLite Micro runtime before reporting /32002/0. Jobs are started with bounded concurrency (``--concurrency``).

The ceiling: a bare aiocoap resource (aiocoap's own Block2 handling) serves the same package bytes, in this
process, and the same devices download it with the same block size and concurrency, with the same device code
and cost as an OTA pull: the simulator's ``fetch_package`` and then the same verify + install. (Until 2026-12 the
ceiling devices sent bare aiocoap GETs and installed nothing, while every OTA device also verified and installed
the model: at 1,000 devices the ratio then measured the simulated devices' CPU, not the server. That raw ceiling
is still measured and its ratio printed, ``--no-raw-ceiling`` skips it.) The printed ratio is OTA bytes/s over
ceiling bytes/s (1.0 = the server's OTA costs nothing beyond what a bare aiocoap Block2 server costs).

    python bench/ota_fanout.py --devices 1000 --procs 4 --concurrency 200
    python bench/ota_fanout.py --devices 200 --procs 2 --profile /tmp/ota.prof --profile-method push
    python bench/ota_fanout.py --devices 300 --procs 2 --method pull --no-raw-ceiling   # quicker: one OTA run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import multiprocessing as mp
import os
import pstats
import queue
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KWS = Path("/work/shared/models/mlperf-tiny/kws_ref_model.tflite")


# ---- device worker processes --------------------------------------------------------------------------------
def worker_main(idx: int, count: int, server_uri: str, public_key: bytes, block_size: int, cmd: Any, out: Any) -> None:
    asyncio.run(_worker(idx, count, server_uri, public_key, block_size, cmd, out))


async def _worker(
    idx: int, count: int, server_uri: str, public_key: bytes, block_size: int, cmd: Any, out: Any
) -> None:
    from lwm2m_server.logging import configure_logging
    from simulator.device import SimulatedDevice
    from simulator.profiles import DeviceConfig

    configure_logging(os.environ.get("OTA_BENCH_LOG", "error"), "json")
    devices = [
        SimulatedDevice(DeviceConfig(endpoint=f"bench-{idx}-{i}", lifetime=3600, block_size=block_size,
                                     server_public_key=public_key, delivery="both", request_timeout_s=60.0))
        for i in range(count)
    ]  # fmt: skip
    gate = asyncio.Semaphore(25)

    async def start(dev: SimulatedDevice) -> None:
        async with gate:
            await dev.start(server_uri)

    await asyncio.gather(*(start(d) for d in devices))
    out.put(("ready", idx, count))
    while True:
        command = await asyncio.to_thread(cmd.get)
        if command[0] == "stop":
            break
        if command[0] == "cpu":
            out.put(("cpu", idx, time.process_time()))
            continue
        if command[0] == "ceiling":
            _, uri, concurrency, mode = command
            nbytes, lost = await _ceiling_downloads(devices, uri, block_size, concurrency, mode)
            out.put(("ceiling", idx, nbytes, lost))
    await asyncio.gather(*(d.stop(deregister=False) for d in devices), return_exceptions=True)
    out.put(("stopped", idx, 0))


async def _ceiling_downloads(devices: list[Any], uri: str, block_size: int, concurrency: int,
                             mode: str) -> tuple[int, int]:  # fmt: skip
    """Each device downloads ``uri`` block by block from its own socket.

    ``mode == "device"``: with the simulator's own pull code (:func:`simulator.pull.fetch_package`, the device's
    block tuning and request timeout) and then the same verify + install (:func:`simulator.install.install` in
    the executor) an OTA pull ends with, so the ceiling and the OTA runs cost the devices the same and the ratio
    measures the server. ``mode == "raw"``: bare aiocoap GETs, no install (the pre-2026-12 ceiling)."""
    import aiocoap.error
    from aiocoap import GET, Message
    from aiocoap.optiontypes import BlockOption

    from lwm2m_server.protocol.paths import LwM2MPath
    from simulator.install import install
    from simulator.pull import PullProgress, block_tuning, fetch_package

    szx = block_size.bit_length() - 5
    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    total = 0
    lost = [0]  # block requests that used up their retransmissions (resent)

    async def raw(dev: Any) -> int:
        num, got = 0, 0
        while True:
            req = Message(code=GET, uri=uri)
            req.opt.block2 = BlockOption.BlockwiseTuple(num, False, szx)
            try:
                resp = await dev.context.request(req, handle_blockwise=False).response
            except aiocoap.error.Error:  # retransmissions used up on a loaded box: ask for the block again
                lost[0] += 1
                continue
            got += len(resp.payload)
            if resp.opt.block2 is None or not resp.opt.block2.more:
                return got
            num += 1

    async def as_device(dev: Any) -> int:
        cfg, package, progress = dev.config, bytearray(), PullProgress(uri)
        hw = cfg.profile
        while True:  # an OTA pull that loses a block fails and is retried by the job; here: resume at once
            try:
                await fetch_package(lambda: dev.context, progress, package, block_size=block_size,
                                    flash_free=hw.flash_free, request_timeout_s=cfg.request_timeout_s,
                                    tuning=block_tuning(cfg.block_ack_timeout_s), on_block=lambda: False)  # fmt: skip
                break
            except (TimeoutError, aiocoap.error.Error):
                lost[0] += 1
        data, firmware = bytes(package), str(dev.firmware.store.get(LwM2MPath(3, 0, 3)))
        outcome = await loop.run_in_executor(None, lambda: install(
            data, flash_free=hw.flash_free, ram_free_ml=hw.ram_free_ml, public_key=cfg.server_public_key,
            accept_raw_firmware=cfg.accept_raw_firmware, current_firmware=firmware, accelerator=hw.accelerator))
        if outcome.result != 1:
            raise RuntimeError(f"ceiling install failed: {outcome.detail}")
        return len(data)

    async def one(dev: Any) -> None:
        nonlocal total
        async with gate:
            got = await (as_device(dev) if mode == "device" else raw(dev))
            total += got  # not `total += await ...`: that reads total before the await and loses updates

    await asyncio.gather(*(one(d) for d in devices))
    return total, lost[0]


# ---- the server side ------------------------------------------------------------------------------------------
def _package(data_dir: Path, version: str) -> tuple[bytes, bytes]:
    from compilers import keys, package
    from compilers.arena import plan_arena

    key = keys.load_or_create_signing_key(data_dir)
    tflite = KWS.read_bytes()
    arena = plan_arena(tflite).total_bytes
    blob = package.build_package(
        name="kws", version=version, variant="int8", arena_bytes=arena, payload=tflite, signing_key=key
    )
    return blob, keys.public_key_bytes(key)


async def _collect(out: Any, kind: str, n: int, timeout: float) -> list[tuple[Any, ...]]:
    got: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        try:
            item = await asyncio.to_thread(out.get, True, 1.0)
        except queue.Empty:
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {n} {kind!r} replies, got {len(got)}") from None
            continue
        if item[0] == kind:
            got.append(item)
    return got


async def _fanout(
    ota: Any, endpoints: list[str], sha: str, method: str, concurrency: int
) -> tuple[float, dict[str, int], list[float], list[tuple[float, str]]]:
    """(wall seconds, outcome counts, each job's seconds from start_update to its end, (seconds, job id))."""
    gate = asyncio.Semaphore(concurrency)
    outcome: dict[str, int] = {}
    durations: list[float] = []
    slow_jobs: list[tuple[float, str]] = []

    async def one(ep: str) -> None:
        async with gate:
            started = time.perf_counter()
            job = await ota.start_update(ep, sha, method=method)
            record = await ota.wait(job)
            durations.append(time.perf_counter() - started)
            slow_jobs.append((durations[-1], job))
            key = record.phase.value if record.phase.value == "succeeded" else f"{record.phase.value}:{record.summary}"
            outcome[key] = outcome.get(key, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(ep) for ep in endpoints))
    return time.perf_counter() - t0, outcome, sorted(durations), slow_jobs


async def _phases(ota: Any, job_id: str) -> str:
    """A job's phases from its history rows: seconds since creation, phase (note)."""
    rows = await ota.history(job_id)
    t0 = rows[0]["ts"] if rows else 0.0
    return ", ".join(f"+{r['ts'] - t0:.2f}s {r['to_phase']}" + (f" ({r['note']})" if r["note"] else "") for r in rows)


def _jobs_line(durations: list[float]) -> str:
    """Job time quantiles: a job stuck on one lost exchange shows as a max near a request timeout (60 s)."""
    if not durations:
        return "         jobs: none"

    def q(f: float) -> float:
        return durations[min(len(durations) - 1, int(f * len(durations)))]

    slow = sum(1 for d in durations if d > 30.0)
    return (f"         jobs: median {q(0.5):.1f}s, p99 {q(0.99):.1f}s, max {durations[-1]:.1f}s; "
            f"{slow} took over 30 s")  # fmt: skip


async def _device_cpu(cmds: list[Any], out: Any) -> float:
    """CPU seconds used so far by all device worker processes (all their threads)."""
    for q in cmds:
        q.put(("cpu",))
    return sum(r[2] for r in await _collect(out, "cpu", len(cmds), 60))


def _cpu_line(wall: float, server_cpu: float, device_cpu: float) -> str:
    return (f"         where the time goes: wall {wall:.1f}s, server process CPU {server_cpu:.1f}s, "
            f"device processes CPU {device_cpu:.1f}s (2 cores shared with everything else on the box)")  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    import aiocoap
    from aiocoap import resource

    from lwm2m_server.config import Settings
    from lwm2m_server.gc_policy import start_gc_policy
    from lwm2m_server.logging import configure_logging
    from lwm2m_server.ota.service import OtaService
    from lwm2m_server.server import LwM2MServer

    configure_logging("error", "json")
    tmp = Path(tempfile.mkdtemp(prefix="ota-bench-"))
    settings = Settings.model_validate({
        "server": {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": str(tmp), "request_timeout_s": 60.0,
                   "coap_fast_push": args.fast_push},
        "ota": {"block_size": args.block_size, "poll_interval_s": 10.0, "timeout_s": 300.0, "max_retries": 2},
        "store": {"batch_window_ms": 5.0},
    })  # fmt: skip
    server = LwM2MServer(settings, persist_events=("registered", "deregistered"))
    ota = OtaService(server)
    await server.start()
    await ota.start()
    gc_policy, gc_task = start_gc_policy(settings.server)  # as `tinymlaas serve` does after start-up
    blob1, public_key = _package(tmp, "1")
    blob2, _ = _package(tmp, "2")
    info1 = await ota.add_package(blob1, "model")
    info2 = await ota.add_package(blob2, "model")
    size = info1.size

    # bare aiocoap Block2 resource with the same bytes: the ceiling
    class Bare(resource.Resource):  # type: ignore[misc]
        async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
            return aiocoap.Message(payload=blob1, content_format=42)

    site = resource.Site()
    site.add_resource(("bare",), Bare())
    bare_ctx = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", 0), transports=["udp6"])
    bare_port = LwM2MServer._bound_port(bare_ctx)

    ctx = mp.get_context("spawn")
    per = [args.devices // args.procs + (1 if i < args.devices % args.procs else 0) for i in range(args.procs)]
    cmds = [ctx.Queue() for _ in per]
    out = ctx.Queue()
    uri = f"coap://127.0.0.1:{server.coap_port}"
    procs = [ctx.Process(target=worker_main, args=(i, n, uri, public_key, args.block_size, cmds[i], out), daemon=True)
             for i, n in enumerate(per)]  # fmt: skip
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    try:
        await _collect(out, "ready", len(procs), 600)
        await asyncio.sleep(1.0)  # let the inventory reads/observes after Register settle
        endpoints = [r.endpoint for r in server.registry.all()]
        print(f"# {len(endpoints)} devices registered in {time.perf_counter() - t0:.1f}s "
              f"({args.procs} processes); package {size} bytes, block {args.block_size} B, "
              f"concurrency {args.concurrency}, push over {'the fast path' if args.fast_push else 'aiocoap'}",
              flush=True)  # fmt: skip

        # ceiling: same devices, same bytes, bare aiocoap Block2 (see _ceiling_downloads for the two modes)
        ceilings: dict[str, float] = {}

        async def ceiling(mode: str, when: str = "") -> float:
            dev_cpu0, srv_cpu0 = await _device_cpu(cmds, out), time.process_time()
            t1 = time.perf_counter()
            for q in cmds:
                q.put(("ceiling", f"coap://127.0.0.1:{bare_port}/bare", max(1, args.concurrency // args.procs), mode))
            replies = await _collect(out, "ceiling", len(procs), 600)
            ceiling_s = time.perf_counter() - t1
            bps = sum(r[2] for r in replies) / ceiling_s
            what = "devices' own pull + install" if mode == "device" else "raw GETs, no install"
            print(f"ceiling  bare aiocoap Block2 ({what}{when}): {ceiling_s:7.2f}s  {len(endpoints) / ceiling_s:8.1f} "
                  f"devices/s  {bps / 1e6:6.2f} MB/s  ({sum(r[3] for r in replies)} block requests "
                  "timed out and were resent)", flush=True)  # fmt: skip
            print(_cpu_line(ceiling_s, time.process_time() - srv_cpu0, await _device_cpu(cmds, out) - dev_cpu0))
            return bps

        for mode in ("raw", "device") if args.raw_ceiling else ("device",):
            ceilings[mode] = await ceiling(mode)
        ceiling_bps = ceilings["device"]
        ota_bps: dict[str, float] = {}

        for method, info in (("push", info1), ("pull", info2)):
            if args.method not in ("both", method):
                continue
            dev_cpu0, srv_cpu0 = await _device_cpu(cmds, out), time.process_time()
            writer = getattr(server.store, "writer", None)
            commits0, writes0 = getattr(writer, "batches_committed", 0), getattr(writer, "writes_committed", 0)
            dups0 = server.fast_path.duplicates if server.fast_path is not None else 0
            profiler = cProfile.Profile() if args.profile and method == args.profile_method else None
            if profiler is not None:
                profiler.enable()
            elapsed, outcome, durations, slow = await _fanout(ota, endpoints, info.sha256, method, args.concurrency)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            ok = outcome.get("succeeded", 0)
            bps = ota_bps[method] = ok * size / elapsed
            print(f"ota-{method}  confirmed {ok}/{len(endpoints)}: {elapsed:7.2f}s  {ok / elapsed:8.1f} devices/s  "
                  f"{bps / 1e6:6.2f} MB/s  ratio vs ceiling {bps / ceiling_bps:5.2f}  {outcome}",
                  flush=True)  # fmt: skip
            if "raw" in ceilings:
                print(f"         ratio vs the raw-GET ceiling (no install there): {bps / ceilings['raw']:5.2f}")
            print(_jobs_line(durations))
            for seconds, job_id in sorted(slow)[len(slow) - args.slow_jobs:] if args.slow_jobs else []:
                print(f"         a slow job ({seconds:.1f}s): {await _phases(ota, job_id)}")
            print(_cpu_line(elapsed, time.process_time() - srv_cpu0, await _device_cpu(cmds, out) - dev_cpu0))
            commits = getattr(writer, "batches_committed", 0) - commits0
            writes = getattr(writer, "writes_committed", 0) - writes0
            print(f"         store: {writes} writes in {commits} commits ({writes / max(1, commits):.1f} writes/commit,"
                  f" {commits / max(1, ok):.1f} commits/device)")  # fmt: skip
            if server.fast_path is not None:  # a device's retransmission of a request the fast path had answered
                print(f"         fast path: {server.fast_path.duplicates - dups0} duplicate requests answered from "
                      "the cache (device retransmissions)")  # fmt: skip
        if args.ceiling_after and ota_bps:
            # the box's load drifts over a run (other work on 2 shared cores): the ceiling again, after the OTA
            # runs, brackets them; a ratio that holds against both is not an artefact of when it was measured
            after = await ceiling("device", ", again after the OTA runs")
            for method, bps in ota_bps.items():
                mean = (ceiling_bps + after) / 2
                print(f"ota-{method}  ratio vs the ceiling after: {bps / after:5.2f}; vs the mean of both ceilings: "
                      f"{bps / mean:5.2f}")  # fmt: skip
        if args.profile:
            stats = pstats.Stats(args.profile)
            stats.sort_stats("tottime").print_stats(25)
    finally:
        for q in cmds:
            q.put(("stop",))
        with contextlib.suppress(TimeoutError):
            await _collect(out, "stopped", len(procs), 60)
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
        await bare_ctx.shutdown()
        gc_task.cancel()
        gc_policy.restore()
        await ota.stop()
        await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=200, help="OTA jobs (and ceiling downloads) in flight")
    parser.add_argument("--block-size", type=int, default=1024, choices=[16, 32, 64, 128, 256, 512, 1024])
    parser.add_argument("--fast-push", action=argparse.BooleanOptionalAction, default=True,
                        help="push blocks with the fast path's CON client ([server] coap_fast_push); off: aiocoap")
    parser.add_argument("--raw-ceiling", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the raw-GET ceiling (no device-side install) and print that ratio too")
    parser.add_argument("--ceiling-after", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the device ceiling again after the OTA runs (load drifts) and print both ratios")
    parser.add_argument("--method", default="both", choices=["both", "push", "pull"], help="the OTA runs to do")
    parser.add_argument("--slow-jobs", type=int, default=0, help="print the phases of this many slowest jobs")
    parser.add_argument("--profile", default="", help="write a cProfile of the server during one run here")
    parser.add_argument("--profile-method", default="pull", choices=["push", "pull"], help="the run to profile")
    asyncio.run(main(parser.parse_args()))
