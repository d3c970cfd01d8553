#!/usr/bin/env python3
"""API authentication cost: requests/s through the bearer-token guard against the same route unguarded, and a
flood of bad tokens (401/s and the audit rows it writes), all measured in this run.

One ``LwM2MServer`` (real SQLite store) serves one app on loopback with two copies of a trivial route added
through ``create_app(extra_routers=...)``, exactly as a real router is added: ``/bench/open`` with access
``OPEN`` and ``/bench/guarded`` with ``BY_METHOD``. So the difference is the guard alone. A client in a
separate process keeps ``--concurrency`` requests in flight on keep-alive connections:

* ``baseline``: GET /bench/open, no token;
* ``token``:    GET /bench/guarded with a valid viewer token (hash + dict lookup + role check);
* ``flood``:    GET /bench/guarded with a wrong token (401 + refusal audit aggregation).

    python bench/api_auth.py [--requests 3000] [--concurrency 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT = r"""
import asyncio, json, sys, time
import httpx

async def main(url, path, token, n, conc):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    codes = {}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=httpx.Limits(max_connections=conc)) as http:
        await http.get(path)  # warm-up
        left = n
        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                r = await http.get(path)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        dt = time.perf_counter() - t0
    print(json.dumps({"rps": n / dt, "codes": codes}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


def drive(url: str, path: str, token: str, n: int, conc: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CLIENT, url, path, token, str(n), str(conc)], capture_output=True,
                         text=True, check=True, timeout=600)  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _ping_module(name: str, path: str) -> None:
    """A router module ``name`` with one trivial GET ``path``, importable by ``create_app``."""
    import types

    from fastapi import APIRouter

    module = types.ModuleType(name)
    router = APIRouter()

    @router.get(path)
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    module.router = router  # type: ignore[attr-defined]
    sys.modules[name] = module


async def main(args: argparse.Namespace) -> None:
    from lwm2m_server.api import ApiRunner, create_app
    from lwm2m_server.api.auth import BY_METHOD, OPEN
    from lwm2m_server.auth.roles import Role
    from lwm2m_server.auth.tokens import TokenService
    from lwm2m_server.config import load_settings
    from lwm2m_server.logging import configure_logging
    from lwm2m_server.server import LwM2MServer

    configure_logging("error", "console")
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        flags = {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": tmp}
        server = LwM2MServer(load_settings(environ={}, overrides={"server": flags}))
        await server.start()
        tokens = TokenService(server.store.tokens)
        _, viewer = await tokens.create(Role.VIEWER, "bench")
        audit = server.store.audit
        _ping_module("bench_ping_open", "/bench/open")
        _ping_module("bench_ping_guarded", "/bench/guarded")
        app = create_app(server, tokens=tokens, audit=audit,
                         extra_routers=[("bench_ping_open", OPEN), ("bench_ping_guarded", BY_METHOD)])  # fmt: skip
        runner = ApiRunner(app, "127.0.0.1", 0)
        await runner.start()
        try:
            loop = asyncio.get_running_loop()
            before = len(await audit.entries(limit=1_000_000))
            rounds: dict[str, list[dict[str, Any]]] = {"baseline": [], "token": [], "flood": []}
            for _ in range(args.rounds):  # interleaved, so a busy machine slows every phase alike
                for name, path, token in (("baseline", "/bench/open", ""), ("token", "/bench/guarded", viewer),
                                          ("flood", "/bench/guarded", "tmla_wrong")):  # fmt: skip
                    rounds[name].append(await loop.run_in_executor(None, drive, runner.url, path, token,
                                                                   args.requests, args.concurrency))  # fmt: skip
            results = {name: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for name, rs in rounds.items()}
            await app.state.refusals.flush()
            rows = len(await audit.entries(limit=1_000_000)) - before
        finally:
            await runner.stop()
            await server.stop()
    base = results["baseline"]["rps"]
    for name, r in results.items():
        print(f"{name:9s} {r['rps']:8.0f} req/s  ratio to baseline {r['rps'] / base:5.2f}  codes {r['codes']}")
    print(f"(median of {args.rounds} interleaved rounds of {args.requests} requests each)")
    print(f"flood: {args.rounds * args.requests} refused requests wrote {rows} audit rows")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is printed")
    asyncio.run(main(parser.parse_args()))
