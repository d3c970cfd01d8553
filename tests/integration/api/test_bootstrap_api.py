"""``/api/bootstrap`` and ``tinymlaas bootstrap ...`` against a live server: configs stored (both fields and
defaults), bad input a 400 JSON error, every change audited, CLI add/list/remove round trip."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.integration.api.conftest import Stack, running_stack
from tests.support.auth import token_env

pytestmark = pytest.mark.asyncio(loop_scope="module")
CLI = [sys.executable, "-c", "from lwm2m_server.cli import main; main()"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(Path(tmp_path_factory.mktemp("bs"))) as s:
        yield s


async def cli(stack: Stack, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, "--server", stack.url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **token_env()})  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_put_get_list_remove(stack: Stack) -> None:
    http = stack.http
    r = await http.put("/api/bootstrap", json={"endpoint": "b-1", "server_uri": "coaps://10.0.0.1:5684"})
    assert r.status_code == 200, r.text
    assert {k: v for k, v in r.json().items() if k != "created_at"} == {
        "endpoint": "b-1", "server_uri": "coaps://10.0.0.1:5684", "security_mode": "psk", "lifetime": 300,
        "binding": "U", "ssid": 1, "delete_first": True}
    r = await http.put("/api/bootstrap", json={"endpoint": "b-2", "server_uri": "coap://h:5683",
                                               "security_mode": "nosec", "lifetime": 60, "binding": "UQ",
                                               "ssid": 7, "delete_first": False})
    assert r.status_code == 200, r.text
    got = (await http.get("/api/bootstrap/b-2")).json()
    assert (got["binding"], got["ssid"], got["delete_first"], got["lifetime"]) == ("UQ", 7, False, 60)
    assert [c["endpoint"] for c in (await http.get("/api/bootstrap")).json()] == ["b-1", "b-2"]
    assert (await stack.server.bootstrap_configs.get("b-1")) is not None
    removed = await http.delete("/api/bootstrap/b-1")
    assert removed.status_code == 200 and removed.json()["endpoint"] == "b-1"
    assert (await http.delete("/api/bootstrap/b-1")).status_code == 404
    assert (await http.get("/api/bootstrap/b-1")).status_code == 404
    actions = [e["action"] for e in await stack.server.audit.entries(action_prefix="bootstrap.")]
    assert sorted(actions) == ["bootstrap.config_put", "bootstrap.config_put", "bootstrap.config_remove"]


@pytest.mark.parametrize("body", [
    {"endpoint": "x", "server_uri": "coap://h"},  # psk needs coaps://
    {"endpoint": "x", "server_uri": "coaps://h", "security_mode": "nosec"},
    {"endpoint": "x", "server_uri": "http://h"},
    {"endpoint": "x", "server_uri": "coaps://h", "lifetime": 0},
    {"endpoint": "x", "server_uri": "coaps://h", "ssid": 70000},
    {"endpoint": "x", "server_uri": "coaps://h", "binding": "ZZ"},
    {"endpoint": "x", "server_uri": "coaps://h", "security_mode": "rpk"},
    {"endpoint": "", "server_uri": "coaps://h"},
])
async def test_bad_config_is_400_json(stack: Stack, body: dict[str, object]) -> None:
    r = await stack.http.put("/api/bootstrap", json=body)
    assert r.status_code in (400, 422), r.text
    assert "detail" in r.json() or "error" in r.json()
    assert (await stack.http.get("/api/bootstrap/x")).status_code == 404


async def test_cli_add_list_remove(stack: Stack) -> None:
    rc, out, err = await cli(stack, "bootstrap", "add", "cli-1", "--server-uri", "coaps://127.0.0.1:5684",
                             "--lifetime", "90", "--binding", "UQ")
    assert rc == 0, err
    assert "cli-1: bootstrap to coaps://127.0.0.1:5684 (psk)" in out
    rc, out, err = await cli(stack, "bootstrap", "list", "--json")
    assert rc == 0, err
    row = next(r for r in json.loads(out) if r["endpoint"] == "cli-1")
    assert (row["lifetime"], row["binding"]) == (90, "UQ")
    rc, out, err = await cli(stack, "bootstrap", "add", "cli-2", "--server-uri", "coap://h", "--mode", "psk")
    assert rc != 0 and "coaps" in err
    rc, out, err = await cli(stack, "bootstrap", "remove", "cli-1")
    assert rc == 0 and "removed" in out, err
    rc, out, err = await cli(stack, "bootstrap", "remove", "cli-1")
    assert rc != 0 and "no bootstrap config" in err
