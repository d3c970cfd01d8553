"""``tinymlaas demo``: the whole system in one command, on the embedded defaults.

A temp data dir with SQLite, no broker: start the server, start a simulated fleet of mixed hardware,
build the model, show the fit report per compile class, roll it out in waves with a little packet loss
and one corrupted download, and summarise. The UI is a small protocol so the CLI can render it with rich
(or print nothing but JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from lwm2m_server.config import load_settings
from lwm2m_server.resources import DEFAULT_FLEET
from lwm2m_server.web.urls import dashboard_url


@dataclass(frozen=True)
class DemoOptions:
    devices: int = 60
    model: str = "digits-cnn"
    fleet_file: Path = DEFAULT_FLEET
    waves: str = "10%,50%,100%"
    max_concurrency: int = 30
    loss_fraction: float = 0.1  # share of devices whose link loses datagrams
    loss_pct: float = 2.0
    corrupt_downloads: int = 1  # devices whose first download arrives corrupted (recovered by OTA retry)
    keep_running: bool = False
    http_port: int = 0
    coap_port: int = 0
    data_dir: Path | None = None
    cache_dir: Path | None = None  # compile cache; default: [compile] cache_dir, shared with serve and compile
    zoo_epochs: int | None = None
    timeout_s: float = 300.0


class DemoUI(Protocol):
    def stage(self, text: str) -> None: ...
    def fit_reports(self, classes: list[dict[str, Any]]) -> None: ...
    def progress(self, status: dict[str, Any], labels: dict[str, str]) -> None: ...
    def done(self, summary: dict[str, Any]) -> None: ...


class DemoError(RuntimeError):
    pass


async def run_demo(opts: DemoOptions, ui: DemoUI) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        data_dir = opts.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tinymlaas-demo-")))
        return await _run(opts, ui, data_dir)


async def _run(opts: DemoOptions, ui: DemoUI, data_dir: Path) -> dict[str, Any]:
    from lwm2m_server.application import Application
    from lwm2m_server.gc_policy import start_gc_policy
    from lwm2m_server.ota.builds import make_compile_service
    from simulator.fleet import Fleet

    started = time.monotonic()
    settings = load_settings(overrides={
        # The demo's NB-IoT profile listens 5 s after each uplink: tell the server (default 93 s, the spec's).
        "server": {"data_dir": data_dir, "coap_host": "127.0.0.1", "coap_port": opts.coap_port,
                   "http_port": opts.http_port, "request_timeout_s": 10.0, "queue_mode_window_s": 4.0},
        "ota": {"poll_interval_s": 2.0, "retry_backoff_s": 0.5, "timeout_s": 120.0, "max_retries": 3},
    })
    cache_dir = opts.cache_dir or settings.compile_cache_dir
    compile_service = make_compile_service(settings, cache_dir=cache_dir, zoo_epochs=opts.zoo_epochs)
    app = Application(settings, http=True, compile_service=compile_service)
    ui.stage(f"starting the server (data dir {data_dir})")
    await app.start()
    gc_policy, gc_task = start_gc_policy(settings.server)  # as `tinymlaas serve` does after start-up
    fleet: Any = None
    try:
        ui.stage(f"server up: CoAP udp/{app.coap_port}, HTTP http://127.0.0.1:{app.http_port}")
        # Train/load the model while the fleet comes up.
        source_task = asyncio.create_task(compile_service.source(opts.model))
        key = app.public_key  # from the secrets dir (the data dir unless configured)
        fleet = _fleet(opts, f"coap://127.0.0.1:{app.coap_port}", key, Fleet)
        ui.stage(f"starting {len(fleet.devices)} simulated devices from {opts.fleet_file.name}")
        await fleet.start(wait_registered=60)
        await _wait_inventory(app, [d.endpoint for d in fleet.devices], 60)
        ui.stage(f"{fleet.registered} devices registered and inventoried; building {opts.model}")
        await source_task
        profile_of = {d.endpoint: d.config.profile.name for d in fleet.devices}
        classes = await _fit_reports(app, compile_service, opts.model, profile_of)
        ui.fit_reports(classes)
        labels = {c["class_key"]: c["label"] for c in classes}

        from lwm2m_server.rollouts.model import RolloutSpec

        spec = RolloutSpec(model=opts.model, waves=opts.waves, max_concurrency=opts.max_concurrency,
                           error_threshold_pct=50.0, name="demo")
        rollout = await app.rollouts.create(spec, start=True, actor="demo")
        ui.stage(f"rollout {rollout.id}: waves {opts.waves}, max concurrency {opts.max_concurrency}")
        deadline = time.monotonic() + opts.timeout_s
        status = await app.rollouts.get(rollout.id, limit=100_000)
        while status["state"] in ("created", "running"):
            ui.progress(status, labels)
            if time.monotonic() > deadline:
                raise DemoError(f"rollout did not finish within {opts.timeout_s:.0f} s")
            await asyncio.sleep(0.25)
            status = await app.rollouts.get(rollout.id, limit=100_000)
        ui.progress(status, labels)
        summary = _summary(status, classes, len(fleet.devices), time.monotonic() - started, app)
        summary["ota_retries"] = await app.server.store.ota_jobs.count_retried()
        ui.done(summary)
        if opts.keep_running:
            base = f"http://127.0.0.1:{app.http_port}"
            # A fresh data dir's first start made an admin token; a reused one gets a new token for this session.
            token = app.initial_admin_token or (await app.tokens.create("admin", "demo"))[1]
            ui.stage(f"dashboard: {dashboard_url(base, token)}")
            ui.stage(f"keeping the server running: {base}/api/devices (Ctrl-C to stop)")
            ui.stage(f"admin API token: {token}\n  export TINYMLAAS_TOKEN={token}  # for the CLI; "
                     "curl -H \"Authorization: Bearer $TINYMLAAS_TOKEN\" ...")
            await asyncio.Event().wait()
        return summary
    finally:
        gc_task.cancel()
        gc_policy.restore()
        if fleet is not None:
            await fleet.stop()
        await app.stop()


def _fleet(opts: DemoOptions, server_uri: str, key: bytes, fleet_cls: Any) -> Any:
    """The fleet file's mix, scaled to ``opts.devices``, plus the demo's injected faults."""
    import random

    from simulator.profiles import FaultConfig

    base = fleet_cls.from_toml(opts.fleet_file, server_uri, opts.devices, server_public_key=key)
    configs = [d.config for d in base.devices]
    rng = random.Random(7)
    order = list(range(len(configs)))
    rng.shuffle(order)
    n_loss = round(opts.loss_fraction * len(configs))
    for i in order[:n_loss]:
        configs[i] = replace(configs[i], faults=replace(configs[i].faults, loss_pct=opts.loss_pct))
    # One corrupted download on a plain, always-reachable device with plenty of room, so the retry is visible.
    roomy = [i for i in order[n_loss:] if configs[i].binding == "U" and configs[i].profile.ram_free_ml >= 65536]
    for i in roomy[: opts.corrupt_downloads]:
        configs[i] = replace(configs[i], faults=replace(configs[i].faults or FaultConfig(), corrupt_downloads=1))
    return fleet_cls(configs, server_uri, stagger_s=base.stagger_s)


async def _wait_inventory(app: Any, endpoints: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    inventory = app.server.inventory
    while time.monotonic() < deadline:
        if all(inventory.get(ep) is not None for ep in endpoints):
            return
        await asyncio.sleep(0.2)
    missing = [ep for ep in endpoints if inventory.get(ep) is None]
    raise DemoError(f"{len(missing)} devices were not inventoried in {timeout:.0f} s (e.g. {missing[:3]})")


async def _fit_reports(app: Any, compile_service: Any, model: str, profile_of: dict[str, str]) -> list[dict[str, Any]]:
    """One fit report per compile class (the rollout reuses these compiles from the cache)."""
    from compilers.target import Target
    from lwm2m_server.rollouts.classes import class_name

    members: dict[str, list[str]] = defaultdict(list)
    targets: dict[str, dict[str, Any] | None] = {}
    cpus: dict[str, set[str | None]] = defaultdict(set)
    for ep in profile_of:
        attrs = await app.deployer.device_attributes(ep)
        if attrs is None:
            continue
        key, target = app.deployer.class_of(attrs)
        members[key].append(ep)
        targets[key] = target
        cpus[key].add(attrs.get("cpu"))

    async def one(key: str) -> dict[str, Any]:
        target = targets[key]
        names = sorted({profile_of[ep] for ep in members[key]})
        row: dict[str, Any] = {"class_key": key, "class_name": class_name(target, cpus[key], fallback=key),
                               "label": ", ".join(names), "devices": len(members[key]), "target": target}
        if target is None:
            row.update(report=None, chosen=None, summary="hardware unknown")
            return row
        report = await compile_service.plan(model, Target.from_dict(target))
        row.update(report=report.to_json(), chosen=report.chosen, summary=report.summary)
        return row

    return list(await asyncio.gather(*(one(k) for k in sorted(members))))


def _summary(status: dict[str, Any], classes: list[dict[str, Any]], devices: int, wall_s: float,
             app: Any) -> dict[str, Any]:
    by_class = {c["class_key"]: c for c in status["classes"]}
    rows = []
    for c in classes:
        got = by_class.get(c["class_key"], {})
        counts: Counter[str] = Counter(got.get("counts", {}))
        chosen = next((v for v in (c["report"] or {}).get("variants", []) if v["variant"] == c["chosen"]), None)
        rows.append({
            "target": c["label"],
            "class_key": c["class_key"],
            "variant": c["chosen"],
            "size": chosen["size"] if chosen else None,
            "arena_bytes": chosen["arena_bytes"] if chosen else None,
            "accuracy": chosen["accuracy"] if chosen else None,
            "confirmed": counts["confirmed"] + counts["skipped"],
            "incompatible": counts["incompatible"],
            "failed": counts["failed"] + counts["cancelled"],
            "reason": None if chosen else c["summary"],
        })
    totals: Counter[str] = Counter(status["counts"])
    failures = [{"endpoint": d["endpoint"], "state": d["state"], "cause": d["cause"]}
                for d in status["devices"] if d["state"] in ("failed", "cancelled")]
    return {
        "devices": devices,
        "wall_s": round(wall_s, 1),
        "rollout": status["id"],
        "state": status["state"],
        "totals": {
            "confirmed": totals["confirmed"] + totals["skipped"],
            "incompatible": totals["incompatible"],
            "failed": totals["failed"] + totals["cancelled"],
        },
        "classes": rows,
        "ota_retries": 0,
        "failures": failures,
        "reason": status.get("reason"),
        "http": f"http://127.0.0.1:{app.http_port}",
    }
