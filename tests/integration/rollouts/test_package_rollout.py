"""A rollout of an uploaded signed package (``model: "package:<sha256>"``, as RolloutSpec documents): no compile,
the package's own size and arena checked per compile class, over REST against real simulated devices."""

from __future__ import annotations

import hashlib

import pytest

from compilers import keys, package
from compilers.arena import plan_arena
from tests.integration.rollouts.conftest import M4F, TINY, Stack
from tests.support.shared import KWS


def _signed_kws(stack: Stack) -> tuple[bytes, str]:
    tflite = KWS.read_bytes()
    key = keys.load_or_create_signing_key(stack.app.settings.server.data_dir)  # the server's signing key
    blob = package.build_package(name="kws", version="7", variant="int8", arena_bytes=plan_arena(tflite).total_bytes,
                                 payload=tflite, signing_key=key)  # fmt: skip
    return blob, hashlib.sha256(tflite).hexdigest()


@pytest.mark.slow
async def test_rollout_of_an_uploaded_package(stack: Stack) -> None:
    for ep, profile in (("p-m4f-1", M4F), ("p-m4f-2", M4F), ("p-tiny", TINY)):
        await stack.add_device(ep, profile)
    blob, payload_sha = _signed_kws(stack)
    up = await stack.http.post("/api/packages", params={"kind": "model"}, content=blob,
                               headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert up.status_code in (200, 201), up.text
    sha = up.json()["sha256"]
    created = await stack.http.post("/api/rollouts", json={"model": f"package:{sha}", "start": True,
                                                           "filter": 'accelerator == "none"'})  # fmt: skip
    assert created.status_code == 201, created.text
    done = await stack.wait_state(created.json()["id"], {"completed", "paused", "failed"}, timeout=90)
    assert done["state"] == "completed", done
    assert done["counts"] == {"confirmed": 2, "incompatible": 1}
    by_ep = {d["endpoint"]: d for d in done["devices"]}
    assert "does not fit" in (by_ep["p-tiny"]["cause"] or "")
    for ep in ("p-m4f-1", "p-m4f-2"):
        assert by_ep[ep]["state"] == "confirmed"
        assert stack.fleet.counters[ep].sha == payload_sha
    assert stack.fleet.counters["p-tiny"].installs == 0


async def test_unknown_package_is_a_400(stack: Stack) -> None:
    r = await stack.http.post("/api/rollouts", json={"model": "package:" + "ab" * 32, "allow_empty": True})
    assert r.status_code == 400, r.text
    assert "no model package" in r.text
