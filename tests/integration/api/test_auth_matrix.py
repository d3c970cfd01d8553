"""Every route of the app x (no token, bad token, each role), generated from the app's route table.

The route table is the app's OpenAPI document (every router documents its routes). The expected role is
written here independently of ``api/app.py``'s table: ``/healthz`` open, ``/api/tokens`` and
``/api/credentials`` admin, otherwise GET/HEAD viewer and anything else operator. A route added later is in the matrix
automatically, so an unguarded or mis-guarded router fails here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from lwm2m_server.auth.roles import Role
from tests.integration.api.conftest import Stack, running_stack
from tests.support.auth import bearer

OPEN_PATHS = {"/healthz"}
ADMIN_PREFIXES = ("/api/tokens", "/api/credentials", "/api/bootstrap")
PARAMS = {"endpoint": "nobody", "ep": "nobody", "path": "3/0/0", "rollout_id": "nope", "action": "start",
          "name": "nope", "token_id": "nope"}  # fmt: skip
ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)


def expected_role(method: str, path: str) -> Role | None:
    if path in OPEN_PATHS:
        return None
    if path.startswith(ADMIN_PREFIXES):
        return Role.ADMIN
    return Role.VIEWER if method in ("GET", "HEAD") else Role.OPERATOR


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PARAMS[m.group(1)], path)


def operations(stack: Stack) -> list[tuple[str, str, str]]:
    """(method, route path, concrete URL) for every operation of the running app (its OpenAPI route table)."""
    ops = []
    for path, item in stack.runner.app.openapi()["paths"].items():
        for method in sorted(item):
            ops.append((method.upper(), path, concrete(path)))
    return ops


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(Path(tmp_path_factory.mktemp("auth"))) as s:
        yield s


async def status_of(http: httpx.AsyncClient, method: str, url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    async with http.stream(method, url, headers=headers, timeout=10.0) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response.status_code, b""  # an endless stream: its status is the answer
        return response.status_code, await response.aread()


@pytest.mark.asyncio(loop_scope="module")
async def test_every_route_by_token_and_role(stack: Stack) -> None:
    tokens = {role: await stack.auth.token(role, f"matrix-{role.label}") for role in ROLES}
    ops = operations(stack)
    assert len(ops) >= 25, ops  # the whole API, not a subset
    checked = 0
    async with httpx.AsyncClient(base_url=stack.url) as http:
        for method, path, url in ops:
            needed = expected_role(method, path)
            for label, headers in (("none", {}), ("bad", bearer("tmla_not-a-real-token")),
                                   ("garbage", {"Authorization": "Basic dXNlcjpwdw=="})):  # fmt: skip
                status, body = await status_of(http, method, url, headers)
                if needed is None:
                    assert status not in (401, 403), (method, path, label, status)
                    continue
                assert status == 401, (method, path, label, status, body[:200])
                assert httpx.Response(401, content=body).json()["error"] == "unauthorized"
                checked += 1
            for role, token in tokens.items():
                status, body = await status_of(http, method, url, bearer(token))
                if needed is not None and role < needed:
                    assert status == 403, (method, path, role.label, status, body[:200])
                    error = httpx.Response(403, content=body).json()
                    assert error["error"] == "forbidden" and needed.label in error["message"]
                else:
                    assert status not in (401, 403), (method, path, role.label, status, body[:200])
                checked += 1
    assert checked >= 6 * (len(ops) - 1)


@pytest.mark.asyncio(loop_scope="module")
async def test_401_carries_www_authenticate_and_revoked_tokens_stop_working(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        missing = await http.get("/api/devices")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert set(missing.json()) == {"error", "message"}
        created = await stack.http.post("/api/tokens", json={"role": "viewer", "name": "short-lived"})
        assert created.status_code == 201, created.text
        secret = created.json()["token"]
        assert (await http.get("/api/devices", headers=bearer(secret))).status_code == 200
        listed = (await stack.http.get("/api/tokens")).json()
        assert secret not in str(listed) and any(t["name"] == "short-lived" for t in listed)
        revoked = await stack.http.delete(f"/api/tokens/{created.json()['id']}")
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        assert (await http.get("/api/devices", headers=bearer(secret))).status_code == 401
        assert (await stack.http.delete("/api/tokens/nope")).status_code == 404
        bad_role = await stack.http.post("/api/tokens", json={"role": "root"})
        assert bad_role.status_code == 400 and "unknown role" in bad_role.json()["message"]
    audit = (await stack.http.get("/api/audit", params={"action": "auth.token.", "limit": 10_000})).json()
    mine = [(e["action"], e["actor"]) for e in audit if e["detail"].get("name") == "short-lived"]
    assert mine == [("auth.token.created", "token:test-admin"), ("auth.token.revoked", "token:test-admin")]
    assert secret not in str(audit)


@pytest.mark.asyncio(loop_scope="module")
async def test_last_admin_token_cannot_be_revoked(stack: Stack) -> None:
    admins = [t for t in (await stack.http.get("/api/tokens")).json() if t["role"] == "admin" and t["active"]]
    for extra in admins[1:]:  # keep the fixture's own admin token as the only one
        if extra["name"] != "test-admin":
            assert (await stack.http.delete(f"/api/tokens/{extra['id']}")).status_code == 200
    own = next(t for t in admins if t["name"] == "test-admin")
    refused = await stack.http.delete(f"/api/tokens/{own['id']}")
    assert refused.status_code == 409 and refused.json()["error"] == "conflict"
    assert (await stack.http.get("/api/tokens")).status_code == 200


@pytest.mark.asyncio(loop_scope="module")
async def test_event_stream_takes_a_query_token_other_routes_do_not(stack: Stack) -> None:
    viewer = await stack.auth.token(Role.VIEWER, "sse")
    async with httpx.AsyncClient(base_url=stack.url) as http:
        status, _ = await status_of(http, "GET", f"/api/events?access_token={viewer}", {})
        assert status == 200
        status, _ = await status_of(http, "GET", "/api/events?access_token=tmla_wrong", {})
        assert status == 401
        status, _ = await status_of(http, "GET", "/api/events", bearer(viewer))
        assert status == 200
        assert (await http.get(f"/api/devices?access_token={viewer}")).status_code == 401


@pytest.mark.asyncio(loop_scope="module")
async def test_refusals_are_audited_and_a_flood_is_aggregated(stack: Stack) -> None:
    await stack.runner.app.state.refusals.flush()  # a fresh window (the matrix above refused a lot)
    before = await stack.http.get("/api/audit", params={"limit": 10_000})
    start = len(before.json())
    async with httpx.AsyncClient(base_url=stack.url) as http:
        for _ in range(300):
            assert (await http.get("/api/devices", headers=bearer("tmla_flood"))).status_code == 401
    viewer = await stack.auth.token(Role.VIEWER, "nosy")
    async with httpx.AsyncClient(base_url=stack.url, headers=bearer(viewer)) as http:
        for _ in range(20):
            assert (await http.get("/api/tokens")).status_code == 403
    await stack.runner.app.state.refusals.flush()  # the window's end (or shutdown) writes the repeat counts
    entries = (await stack.http.get("/api/audit", params={"limit": 10_000})).json()[start:]
    refused = [e for e in entries if e["action"] == "auth.refused"]
    repeated = [e for e in entries if e["action"] == "auth.refused.repeated"]
    flood = [e for e in refused if e["detail"]["reason"] == "invalid_token"]
    assert len(flood) == 1 and flood[0]["actor"] == "127.0.0.1" and flood[0]["detail"]["path"] == "/api/devices"
    forbidden = [e for e in refused if e["detail"]["status"] == 403]
    assert len(forbidden) == 1 and forbidden[0]["detail"]["path"] == "/api/tokens"
    counts = {e["detail"]["reason"]: e["detail"]["count"] for e in repeated}
    assert counts["invalid_token"] == 299 and counts["forbidden"] == 19
    assert len(entries) < 10  # 320 refused requests, a handful of rows
    assert [e["detail"]["name"] for e in entries if e["action"] == "auth.token.created"] == []  # made in-process
    only_auth = (await stack.http.get("/api/audit", params={"action": "auth.refused", "limit": 10_000})).json()
    assert only_auth and all(e["action"].startswith("auth.refused") for e in only_auth)


async def test_metrics_open_and_query_token_off_by_config(tmp_path: Path) -> None:
    from lwm2m_server.config import load_settings
    from lwm2m_server.server import LwM2MServer
    from tests.support.auth import authorized_api

    env = {"TINYMLAAS_API__METRICS_OPEN": "true", "TINYMLAAS_API__QUERY_TOKEN": "false"}
    server_flags = {"coap_host": "127.0.0.1", "coap_port": 0, "data_dir": str(tmp_path)}
    settings = load_settings(environ=env, overrides={"server": server_flags})
    assert settings.api.metrics_open and not settings.api.query_token
    server = LwM2MServer(settings)
    await server.start()
    try:
        async with authorized_api(server) as runner, httpx.AsyncClient(base_url=runner.url) as http:
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200 and "tinymlaas_devices_registered" in metrics.text
            status, _ = await status_of(http, "GET", f"/api/events?access_token={runner.auth.admin_token}", {})
            assert status == 401
            assert (await http.get("/api/devices")).status_code == 401  # the rest stays guarded
            assert "access_token" not in str(runner.app.openapi()["paths"]["/api/events"])
    finally:
        await server.stop()


@pytest.mark.asyncio(loop_scope="module")
async def test_openapi_documents_bearer_auth_and_the_sse_query_token(stack: Stack) -> None:
    doc = stack.runner.app.openapi()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "security" not in doc["paths"]["/healthz"]["get"]
    assert doc["paths"]["/api/devices"]["get"]["security"] == [{"HTTPBearer": []}]
    params = [p["name"] for p in doc["paths"]["/api/events"]["get"]["parameters"]]
    assert "access_token" in params


@pytest.mark.asyncio(loop_scope="module")
async def test_revoking_a_token_ends_its_open_event_stream(stack: Stack) -> None:
    import asyncio

    created = (await stack.http.post("/api/tokens", json={"role": "viewer", "name": "dashboard"})).json()
    lines: list[str] = []
    async with httpx.AsyncClient(base_url=stack.url, headers=bearer(created["token"])) as http:

        async def follow() -> None:
            async with http.stream("GET", "/api/events", timeout=30.0) as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    lines.append(line)

        reader = asyncio.create_task(follow())
        for _ in range(200):
            if ": connected" in lines:
                break
            await asyncio.sleep(0.02)
        assert ": connected" in lines
        assert (await stack.http.delete(f"/api/tokens/{created['id']}")).status_code == 200
        await asyncio.wait_for(reader, 5.0)  # the server ended the stream (keep-alive is 0.5 s here)
    assert ": token revoked" in lines
