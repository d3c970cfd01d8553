"""Rollout engine rules over a real fleet: dynamic membership, the rate cap, and no second update of a device
that already runs the build."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.rollouts.conftest import M4F, M7, Stack, wait_for


async def _create(stack: Stack, **body: Any) -> dict[str, Any]:
    response = await stack.http.post("/api/rollouts", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_dynamic_membership_joins_matching_late_devices(stack: Stack) -> None:
    await stack.upload_kws("kws")
    await stack.add_device("dyn-0", M4F)
    # A long rate cap keeps the rollout running while the late devices register.
    created = await _create(stack, model="kws", filter='cpu == "cortex-m4f"', dynamic=True, rate_per_minute=30,
                            start=True)
    rid = created["id"]
    assert created["total"] == 1
    await stack.add_device("dyn-late-m4f", M4F)  # matches the filter: joins
    await stack.add_device("dyn-late-m7", M7)  # does not match: stays out

    async def joined_and_done() -> bool:
        status = await stack.rollout(rid, limit=100)
        return status["state"] == "completed" and status["total"] == 2

    await wait_for(joined_and_done, 40, "the late matching device to join and the rollout to complete")
    status = await stack.rollout(rid, limit=100)
    assert {d["endpoint"]: d["state"] for d in status["devices"]} == {"dyn-0": "confirmed",
                                                                    "dyn-late-m4f": "confirmed"}
    assert stack.fleet.counters["dyn-late-m4f"].installs == 1 and stack.fleet.counters["dyn-late-m7"].installs == 0
    audit = (await stack.http.get("/api/audit", params={"endpoint": "dyn-late-m4f"})).json()
    assert [a["action"] for a in audit][:1] == ["device.joined"]


async def test_rate_cap_and_no_second_update_of_a_device_already_running_the_build(stack: Stack) -> None:
    await stack.upload_kws("kws")
    for i in range(3):
        await stack.add_device(f"rate-{i}", M4F)
    started = time.monotonic()
    first = await _create(stack, model="kws", endpoints=["rate-0", "rate-1", "rate-2"], rate_per_minute=60,
                          max_concurrency=10, start=True)
    done = await stack.wait_state(first["id"], {"completed", "paused"}, timeout=60)
    assert done["state"] == "completed" and done["counts"] == {"confirmed": 3}
    assert time.monotonic() - started >= 2.0  # one device per second: the third cannot start before t=2 s
    installs = {ep: stack.fleet.counters[ep].installs for ep in ("rate-0", "rate-1", "rate-2")}
    assert installs == {"rate-0": 1, "rate-1": 1, "rate-2": 1}

    # The same build again: every device already reports its sha in /32002/0, so nothing is re-installed.
    second = await _create(stack, model="kws", endpoints=["rate-0", "rate-1", "rate-2"], start=True)
    again = await stack.wait_state(second["id"], {"completed", "paused"}, timeout=30)
    assert again["state"] == "completed" and again["counts"] == {"skipped": 3}
    assert {ep: stack.fleet.counters[ep].installs for ep in installs} == installs


async def test_installed_build_is_known_from_the_inventory_observation_after_a_reregister(stack: Stack) -> None:
    """What a restarted server knows: not the rollout's memory, only the /32002/0 observation made after Register."""
    await stack.upload_kws("kws")
    device = await stack.add_device("seen-0", M4F)
    first = await _create(stack, model="kws", endpoints=["seen-0"], start=True)
    assert (await stack.wait_state(first["id"], {"completed", "paused"}, timeout=40))["counts"] == {"confirmed": 1}
    stack.app.deployer._installed.clear()  # as after a restart: no notification seen yet
    before = stack.app.server.registry.get("seen-0")
    assert before is not None
    device.trigger_update(full=True)  # the device registers again: the inventory re-observes /32002/0

    async def reobserved() -> bool:
        reg = stack.app.server.registry.get("seen-0")
        renewed = reg is not None and reg.reg_id != before.reg_id
        return renewed and bool(await stack.app.deployer.installed_sha("seen-0"))

    await wait_for(reobserved, 20, "the re-registration and the new /32002/0 observation")
    second = await _create(stack, model="kws", endpoints=["seen-0"], start=True)
    again = await stack.wait_state(second["id"], {"completed", "paused"}, timeout=30)
    assert again["counts"] == {"skipped": 1}
    assert stack.fleet.counters["seen-0"].installs == 1
