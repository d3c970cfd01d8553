"""``tinymlaas read-composite | write-composite | observe-composite | data`` as subprocesses against a live
server and a simulated device over real UDP."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from lwm2m_server.protocol.paths import LwM2MPath
from tests.integration.api.conftest import Stack
from tests.support.auth import token_env

CLI = [sys.executable, "-c", "from lwm2m_server.cli import main; main()"]
CHECKOUT = str(Path(__file__).resolve().parents[3])  # this checkout's code, not whatever the venv points at


async def start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": CHECKOUT, **token_env()},
    )  # fmt: skip


async def run(*args: str, timeout: float = 30.0) -> tuple[int, str, str]:
    proc = await start(*args)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_composite_commands_and_send_data(stack: Stack) -> None:
    device = await stack.add_device("cli-comp", wait_profile=False)
    code, out, err = await run("write-composite", "cli-comp", '{"/1/0/1": 444, "/3/0/14": "+05:00"}',
                               "--server", stack.url)  # fmt: skip
    assert code == 0, err
    assert "wrote /1/0/1, /3/0/14 on cli-comp" in out
    code, out, err = await run("read-composite", "cli-comp", "/1/0/1", "/3/0/14", "--server", stack.url, "--json")
    assert code == 0, err
    assert json.loads(out) == {"/1/0/1": 444, "/3/0/14": "+05:00"}

    code, _, err = await run("write-composite", "cli-comp", "[1]", "--server", stack.url)
    assert code == 2 and "JSON object" in err
    code, _, err = await run("write-composite", "cli-comp", '{"/3/0": 1}', "--server", stack.url)
    assert code == 2 and "HTTP 400" in err

    await device.send([LwM2MPath(3, 0, 9)])
    code, out, err = await run("data", "cli-comp", "--server", stack.url, "--json")
    assert code == 0, err
    assert [item["path"] for item in json.loads(out)] == ["/3/0/9"]


async def test_observe_composite_command(stack: Stack) -> None:
    await stack.add_device("cli-obs", wait_profile=False)
    proc = await start("observe-composite", "cli-obs", "/1/0/6", "/1/0/1", "--server", stack.url, "--json",
                       "--count", "1")  # fmt: skip
    assert proc.stdout is not None
    initial = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
    assert initial["type"] == "initial" and set(initial["content"]) == {"/1/0/6", "/1/0/1"}
    for _ in range(100):
        if stack.server.client.composite_observations("cli-obs"):
            break
        await asyncio.sleep(0.05)
    flipped = not initial["content"]["/1/0/6"]
    assert (await stack.http.put("/api/devices/cli-obs/1/0/6", json=flipped)).status_code == 200
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    event = json.loads(out.decode().strip().splitlines()[-1])
    assert event["data"]["path"] == "/" and event["data"]["values"]["/1/0/6"] is flipped
    for _ in range(100):  # the command cancels its observation on exit
        if not stack.server.client.composite_observations("cli-obs"):
            break
        await asyncio.sleep(0.05)
    assert stack.server.client.composite_observations("cli-obs") == []
