"""A rollout that reaches a device whose update to the same package is already running (an operator started it
by hand; or a rollout leader died between starting the job and recording it) follows that job: the device is
confirmed once, with one job row, instead of a second update being refused with 409 and the device failed."""

from __future__ import annotations

import hashlib

from compilers import keys, package
from compilers.arena import plan_arena
from simulator.profiles import FaultConfig
from tests.integration.rollouts.conftest import M4F, Stack
from tests.support.fleet import wait_for
from tests.support.shared import KWS


async def test_rollout_follows_the_update_already_running(stack: Stack) -> None:
    await stack.add_device("run-1", M4F, faults=FaultConfig(delay_ms=30))  # a slow link: the job lasts a while
    tflite = KWS.read_bytes()
    blob = package.build_package(name="kws", version="7", variant="int8", arena_bytes=plan_arena(tflite).total_bytes,
                                 payload=tflite,
                                 signing_key=keys.load_or_create_signing_key(stack.app.settings.server.data_dir))
    up = await stack.http.post("/api/packages", params={"kind": "model"}, content=blob,
                               headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert up.status_code in (200, 201), up.text
    sha = up.json()["sha256"]
    manual = await stack.http.post("/api/devices/run-1/update", json={"package": sha, "method": "pull"})
    assert manual.status_code == 202, manual.text
    job_id = manual.json()["job"]

    async def downloading() -> bool:
        status = (await stack.http.get("/api/devices/run-1/update")).json()
        return status["job"]["phase"] in ("delivering", "downloading")

    await wait_for(downloading, 10, "the manual job downloading")
    created = await stack.http.post("/api/rollouts", json={"model": f"package:{sha}", "start": True})
    assert created.status_code == 201, created.text
    done = await stack.wait_state(created.json()["id"], {"completed", "paused", "failed"}, timeout=60)
    assert done["state"] == "completed" and done["counts"] == {"confirmed": 1}, done
    assert done["devices"][0]["job_id"] == job_id
    status = (await stack.http.get("/api/devices/run-1/update")).json()
    assert status["job"]["id"] == job_id and status["job"]["phase"] == "succeeded" and status["previous"] == []
    assert stack.fleet.counters["run-1"].installs == 1
    assert stack.fleet.counters["run-1"].sha == hashlib.sha256(tflite).hexdigest()
