"""The thin REST clients (tinymlaas devices/device/read/write/exec/observe) as subprocesses against a live server."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.api.conftest import M0, U55, Stack, running_stack
from tests.support.auth import token_env

pytestmark = pytest.mark.asyncio(loop_scope="module")

CLI = [sys.executable, "-c", "from lwm2m_server.cli import main; main()"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("cli")
    async with running_stack(data_dir) as s:
        await s.add_device("cli-10", version="1.0", profile=M0)
        await s.add_device("cli-u55", version="1.1", profile=U55)
        yield s


async def run(*args: str, timeout: float = 30.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **token_env()},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_devices_json_and_table(stack: Stack) -> None:
    code, out, _ = await run("devices", "--server", stack.url, "--json")
    assert code == 0
    body = json.loads(out)
    assert body["total"] == 2 and [i["endpoint"] for i in body["items"]] == ["cli-10", "cli-u55"]
    code, out, _ = await run("devices", "--server", stack.url, "--accelerator", "ethos-u55-128", "--json")
    assert code == 0 and [i["endpoint"] for i in json.loads(out)["items"]] == ["cli-u55"]
    code, out, _ = await run("devices", "--server", stack.url, "--no-fpu")
    assert code == 0 and "cli-10" in out and "cli-u55" not in out and "cortex-m0plus" in out


async def test_device_read_write_exec(stack: Stack) -> None:
    code, out, _ = await run("device", "cli-u55", "--server", stack.url, "--json")
    assert code == 0 and json.loads(out)["profile"]["accelerator"] == "ethos-u55-128"

    code, out, _ = await run("read", "cli-10", "/3/0", "--server", stack.url, "--json")
    assert code == 0
    content = json.loads(out)
    assert content["/3/0/0"] == "TinyMLaaS Sim" and content["/3/0/2"] == "SN-cli-10"
    code, out, _ = await run("read", "cli-10", "/3/0/0", "--server", stack.url, "--format", "tlv")
    assert code == 0 and "TinyMLaaS Sim" in out

    code, out, _ = await run("write", "cli-10", "/1/0/3", "77", "--server", stack.url)
    assert code == 0 and "wrote /1/0/3" in out
    assert (await stack.http.get("/api/devices/cli-10/1/0/3")).json()["value"] == 77

    before = stack.devices["cli-10"].updates
    code, out, _ = await run("exec", "cli-10", "/1/0/8", "--server", stack.url)
    assert code == 0 and "executed /1/0/8" in out
    for _ in range(100):
        if stack.devices["cli-10"].updates > before:
            break
        await asyncio.sleep(0.05)
    assert stack.devices["cli-10"].updates > before


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("read", "ghost", "/3/0"), 1, "HTTP 404 not_found: unknown device 'ghost'"),
        (("read", "cli-10", "/3/x"), 2, "HTTP 400 bad_request"),
        (("read", "cli-10", "/3/0/999"), 1, "HTTP 502 4.04"),
        (("write", "cli-10", "/1/0/1", "sixty"), 2, "expected an integer"),
        (("read", "cli-10", "/3/0", "--format", "yaml"), 2, "unknown format"),
    ],
)
async def test_errors_are_one_line_with_exit_codes(
    stack: Stack, args: tuple[str, ...], code: int, fragment: str
) -> None:
    rc, out, err = await run(*args, "--server", stack.url)
    assert rc == code
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1
    assert "Traceback" not in err and out == ""


async def test_unreachable_server_and_bad_url() -> None:
    rc, _, err = await run("devices", "--server", "http://127.0.0.1:9")
    assert rc == 1 and err.startswith("error: cannot reach http://127.0.0.1:9")
    rc, _, err = await run("devices", "--server", "ftp://x")
    assert rc == 2 and "--server must be an http" in err


async def test_observe_follows_notifications(stack: Stack) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "observe",
        "cli-10",
        "/1/0/6",
        "--server",
        stack.url,
        "--count",
        "2",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20.0))
        assert first["type"] == "initial" and first["content"] == {"/1/0/6": True}
        for value in (False, True):
            assert (await stack.http.put("/api/devices/cli-10/1/0/6", json=value)).status_code == 200
            note = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10.0))
            assert note["type"] == "notification" and note["data"]["values"] == {"/1/0/6": value}
        assert await asyncio.wait_for(proc.wait(), 10.0) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # the observation was cancelled when the command exited
    assert [o for o in stack.server.client.observations("cli-10") if str(o.path) == "/1/0/6"] == []


async def test_observe_table_mode(stack: Stack) -> None:
    assert (await stack.http.put("/api/devices/cli-u55/1/0/6", json=True)).status_code == 200
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "observe",
        "cli-u55",
        "/1/0/6",
        "--server",
        stack.url,
        "-n",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "120", "PATH": "/usr/bin", **token_env()},
    )
    try:
        for _ in range(400):  # the command observes only once its event stream is open
            if any(str(o.path) == "/1/0/6" for o in stack.server.client.observations("cli-u55")):
                break
            await asyncio.sleep(0.05)
        assert (await stack.http.put("/api/devices/cli-u55/1/0/6", json=False)).status_code == 200
        out, _ = await asyncio.wait_for(proc.communicate(), 20.0)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0
    assert "(observing)" in text and "│ /1/0/6 │ True" in text  # the initial value table
    assert "/1/0/6 = False" in text  # the notification line


async def test_read_shows_resource_names_and_units(stack: Stack) -> None:
    rc, out, err = await run("read", "cli-u55", "/32001/0", "--server", stack.url)
    assert rc == 0, err
    assert "TinyML Hardware" in out  # the object's name in the title
    line = next(ln for ln in out.splitlines() if "/32001/0/0" in ln)
    assert [c.strip() for c in line.strip("│ ").split("│")] == ["/32001/0/0", "RAM Total", "524288", "B"]
    rc, out, _ = await run("read", "cli-10", "/3/0", "--server", stack.url)
    assert rc == 0 and "Manufacturer" in out
    memory = next(ln for ln in out.splitlines() if "/3/0/10" in ln)
    assert "Memory Free" in memory and "KiB" in memory


async def test_unknown_object_and_bad_paths_are_explained_in_words(stack: Stack) -> None:
    rc, out, err = await run("read", "cli-10", "/99/0", "--server", stack.url)
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert "HTTP 404 unknown_object: object 99 is not in the server's object model" in err
    assert "DDF" in err and "objects/99.xml" in err and "502" not in err
    for path, words in (("/3/0/abc", "'abc' is not a number"), ("/3/0/1/2/3", "it has 5 levels, at most 4")):
        rc, _, err = await run("read", "cli-10", path, "--server", stack.url)
        assert rc == 2 and words in err and "/object[/instance[/resource" in err, err
        assert "pattern" not in err and "[0-9]" not in err  # words, not the regex


async def test_size_flags_use_the_one_parser_and_echo_datasheet_units(stack: Stack) -> None:
    rc, out, err = await run("devices", "--min-ram", "256KiB", "--json", "--server", stack.url)
    assert rc == 0 and err == ""
    big = {d["endpoint"] for d in json.loads(out)["items"]}
    rc, out, err = await run("devices", "--min-ram", "256KB", "--json", "--server", stack.url)
    assert rc == 0 and err.strip() == "note: --min-ram 256KB = 262,144 B (KB read as KiB; write 256000 for 256,000 B)"
    assert {d["endpoint"] for d in json.loads(out)["items"]} == big
    rc, _, err = await run("devices", "--min-ram", "12 parsecs", "--server", stack.url)
    assert rc == 2 and "--min-ram: unknown unit 'parsecs'" in err
    response = await stack.http.get("/api/devices", params={"min_ram": "1.5 bananas"})
    assert response.status_code == 400 and "min_ram" in response.json()["message"]
    response = await stack.http.get("/api/devices", params={"min_ram": "256KiB"})
    assert {d["endpoint"] for d in response.json()["items"]} == big
