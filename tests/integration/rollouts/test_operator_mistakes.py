"""Mistakes never pass silently: filter errors (REST 400, CLI exit 2) name the problem; an empty target is refused."""

from __future__ import annotations

import pytest

from lwm2m_server.rollouts.filters import FIELDS
from tests.integration.rollouts.conftest import M4F, Stack
from tests.integration.rollouts.test_rollout_cli import cli


async def test_filter_mistakes_are_400_with_the_field_list_and_the_column(stack: Stack) -> None:
    await stack.upload_kws("kws")
    await stack.add_device("om-1", M4F)
    cases = [
        ('colour == "red"', "column 1: unknown field 'colour'"),
        ("accelerator == none", 'did you mean \\"none\\"?'),
        ("ram_total >", "column 12: the filter ends too early"),
        ("ram_total = 5", "column 11: use == to compare"),
    ]
    for text, words in cases:
        for response in (await stack.http.post("/api/rollouts", json={"model": "kws", "filter": text}),
                         await stack.http.post("/api/models/kws/plan", params={"filter": text})):
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["error"] == "bad_request" and words.replace('\\"', '"') in body["message"], body
    message = (await stack.http.post("/api/rollouts", json={"model": "kws", "filter": "colour == 1"})).json()["message"]
    assert all(f"{f.name} ({f.type}), e.g. {f.example}" in message for f in FIELDS)
    assert (await stack.http.get("/api/rollouts")).json() == []  # nothing was created
    schema = (await stack.http.get("/openapi.json")).json()
    assert "`ram_free_ml` | size" in str(schema)  # the field table is in the OpenAPI description


async def test_a_rollout_matching_no_device_is_refused_unless_asked_for(stack: Stack) -> None:
    await stack.upload_kws("kws")
    await stack.add_device("om-2", M4F)
    refused = await stack.http.post("/api/rollouts", json={"model": "kws", "filter": 'accelerator == "ethos-u65-512"',
                                                           "start": True})
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "empty_target"
    assert "matches none of the 1 registered device(s)" in body["message"] and "--allow-empty" in body["message"]
    none_given = await stack.http.post("/api/rollouts", json={"model": "kws", "endpoints": ["ghost"]})
    assert none_given.status_code == 409 and "none of the 1 given endpoint(s)" in none_given.json()["message"]
    assert (await stack.http.get("/api/rollouts")).json() == []
    allowed = await stack.http.post("/api/rollouts", json={"model": "kws", "filter": 'accelerator == "ethos-u65-512"',
                                                           "allow_empty": True, "dynamic": True})
    assert allowed.status_code == 201 and allowed.json()["total"] == 0


@pytest.mark.parametrize(("text", "words"), [
    ('colour == "red"', "unknown field 'colour'"),
    ("accelerator == none", 'did you mean "none"?'),
])  # fmt: skip
async def test_cli_filter_mistakes_exit_2_before_any_request(text: str, words: str) -> None:
    commands = (("rollout", "create", "--model", "kws", "--filter", text), ("models", "plan", "kws", "--filter", text))
    for args in commands:
        rc, out, err = await cli(None, *args, "--server", "http://127.0.0.1:9")  # nothing listens there
        assert rc == 2, (rc, out, err)
        assert err.startswith("error: --filter: column") and words in err and "Traceback" not in err


async def test_cli_empty_target_is_refused_and_allow_empty_creates(stack: Stack) -> None:
    await stack.upload_kws("kws")
    await stack.add_device("om-3", M4F)
    rc, _, err = await cli(stack, "rollout", "create", "--model", "kws", "--filter", 'cpu == "riscv"')
    assert rc == 1 and "HTTP 409 empty_target" in err and "--allow-empty" in err
    rc, out, err = await cli(stack, "rollout", "create", "--model", "kws", "--filter", 'cpu == "riscv"',
                             "--allow-empty")
    assert rc == 0 and ": 0 devices" in out, err
    rc, out, err = await cli(stack, "rollout", "create", "--model", "kws", "--filter", "ram_total >= 64KB")
    assert rc == 0, err
    assert "note: filter 64KB = 65,536 B" in err and ": 1 devices" in out


async def test_validation_errors_speak_in_words_not_regexes(stack: Stack) -> None:
    await stack.add_device("om-4", M4F)
    response = await stack.http.post("/api/devices/om-4/update", json={"package": "abc"})
    assert response.status_code == 400
    message = response.json()["message"]
    assert message == "package: must be a sha256: 64 lowercase hex digits, got 3 characters 'abc'", message
    response = await stack.http.get("/api/devices/om-4/3/0/abc")
    assert response.status_code == 400 and "'abc' is not a number" in response.json()["message"]
    assert "[0-9]" not in response.json()["message"]


async def test_api_echoes_datasheet_sizes_in_filters(stack: Stack) -> None:
    await stack.upload_kws("kws")
    await stack.add_device("om-5", M4F)
    note = "filter 128KB = 131,072 B (KB read as KiB; write 128000 for 128,000 B)"
    created = await stack.http.post("/api/rollouts", json={"model": "kws", "filter": "ram_total >= 128KB"})
    assert created.status_code == 201 and created.json()["notes"] == [note] and created.json()["total"] == 1
    plain = await stack.http.post("/api/rollouts", json={"model": "kws", "filter": "ram_total >= 128KiB"})
    assert plain.status_code == 201 and plain.json()["notes"] == []
