"""``tinymlaas serve`` prints an admin token on its first start only; ``tinymlaas token ...`` and ``--token`` /
``TINYMLAAS_TOKEN`` against it, all as real processes over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

CLI = [sys.executable, "-c", "from lwm2m_server.cli import main; main()"]
BASE_ENV = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "TINYMLAAS_LOGGING__LEVEL": "warning"}


class Served:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""
        self.token: str | None = None
        self.output: list[str] = []

    async def start(self) -> None:
        self.token, self.output = None, []
        self.proc = await asyncio.create_subprocess_exec(
            *CLI, "serve", "--coap-host", "127.0.0.1", "--coap-port", "0", "--http-port", "0",
            "--data-dir", str(self.data_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**BASE_ENV, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        )  # fmt: skip
        assert self.proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode()
            assert line, f"serve exited: {self.output}"
            self.output.append(line)
            if line.startswith("ADMIN_TOKEN "):
                self.token = line.split()[1]
            if line.startswith("READY "):
                self.url = "http://127.0.0.1:" + dict(kv.split("=") for kv in line.split()[1:])["http"]
                return

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.communicate(), 20)


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    s = Served(tmp_path / "data")
    try:
        yield s
    finally:
        await s.stop()


async def cli(*args: str, token: str | None = None) -> tuple[int, str, str]:
    env = {**BASE_ENV, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    if token is not None:
        env["TINYMLAAS_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(*CLI, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_first_start_token_then_token_commands(served: Served) -> None:
    await served.start()
    admin = served.token
    assert admin is not None and admin.startswith("tmla_")
    db = (served.data_dir / "tinymlaas.sqlite3").read_bytes()
    assert admin.encode() not in db

    code, _, err = await cli("devices", "--server", served.url)
    assert code == 1 and "HTTP 401" in err and "TINYMLAAS_TOKEN" in err
    code, out, err = await cli("devices", "--server", served.url, "--token", admin, "--json")
    assert code == 0, err
    assert json.loads(out)["total"] == 0

    code, out, err = await cli("token", "create", "--role", "operator", "--name", "ci", "--server", served.url,
                               "--json", token=admin)  # fmt: skip
    assert code == 0, err
    operator = json.loads(out)
    assert operator["role"] == "operator" and operator["token"].startswith("tmla_")
    code, out, err = await cli("token", "create", "--role", "viewer", "--server", served.url, token=admin)
    assert code == 0, err
    viewer = out.strip().splitlines()[-1]
    assert viewer.startswith("tmla_") and "shown only now" in out

    # an operator may not manage tokens; a viewer may read but not write
    code, _, err = await cli("token", "list", "--server", served.url, token=operator["token"])
    assert code == 1 and "HTTP 403" in err and "needs admin" in err
    code, _, err = await cli("rollout", "list", "--server", served.url, "--token", viewer)
    assert code == 0, err
    code, _, err = await cli("rollout", "create", "--model", "kws", "--server", served.url, "--token", viewer)
    assert code == 1 and "HTTP 403" in err

    code, out, err = await cli("token", "list", "--server", served.url, "--json", token=admin)
    assert code == 0, err
    listed = json.loads(out)
    assert {t["name"] for t in listed} >= {"initial-admin", "ci"} and "token" not in listed[0]
    code, out, err = await cli("token", "revoke", operator["id"], "--server", served.url, token=admin)
    assert code == 0 and "revoked" in out, err
    code, _, err = await cli("devices", "--server", served.url, token=operator["token"])
    assert code == 1 and "HTTP 401" in err

    # usage errors: exit 2 with a message, the server keeps serving
    code, _, err = await cli("token", "create", "--role", "root", "--server", served.url, token=admin)
    assert code == 2 and "--role must be one of" in err
    code, _, err = await cli("token", "revoke", "nope", "--server", served.url, token=admin)
    assert code == 1 and "HTTP 404" in err
    code, _, err = await cli("devices", "--server", served.url, "--token", "bad\ttoken")
    assert code == 2 and "printable" in err

    # a restart on the same data dir prints no new token; the old ones still work
    await served.stop()
    await served.start()
    assert served.token is None and not any("ADMIN_TOKEN" in line for line in served.output)
    code, _, err = await cli("devices", "--server", served.url, token=admin)
    assert code == 0, err
    code, _, err = await cli("devices", "--server", served.url, token=viewer)
    assert code == 0, err
