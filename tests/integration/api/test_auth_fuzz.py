"""Arbitrary Authorization headers and access_token values over a real socket: always a clean 401, never a
500, and the server keeps answering (hypothesis drives a synchronous client against the threaded stack)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.api.conftest import Stack
from tests.integration.api.test_schemathesis import ThreadedStack

HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=400)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    threaded = ThreadedStack(tmp_path_factory.mktemp("authfuzz"))
    try:
        yield threaded.start()
    finally:
        threaded.stop()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(HEADER_TEXT, HEADER_TEXT.map(lambda t: "Bearer " + t), HEADER_TEXT.map(lambda t: "tmla_" + t))
       .map(lambda v: v.strip(" \t")), query=HEADER_TEXT)  # fmt: skip
def test_garbage_credentials_get_401(live: Stack, value: str, query: str) -> None:
    with httpx.Client(base_url=live.url, timeout=10.0) as http:
        response = http.get("/api/devices", headers={"Authorization": value.encode("latin-1")})  # type: ignore[dict-item]
        assert response.status_code == 401, (value, response.status_code, response.text[:200])
        assert set(response.json()) == {"error", "message"}
        events = http.get("/api/events", params={"access_token": query}, timeout=5.0)  # a wrong token: no stream
        assert events.status_code == 401, (query, events.status_code, events.text[:200])
        assert http.get("/healthz").status_code == 200
