"""``tinymlaas serve``'s log stays one JSON object per line while TensorFlow converts a model in its workers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from lwm2m_server.ota import builds
from tests.integration.rollouts.conftest import M4F, Fleet, wait_for
from tests.integration.rollouts.test_restart import Serve, free_udp_port
from tests.support.tiny_keras import tiny_keras

CHATTER = ("absl::InitializeLog", "cudart_stub", "cuInit", "oneDNN", "fully_quantize", "I0000 ", "W0000 ", "E0000 ")


@pytest.mark.slow
async def test_serve_log_is_json_lines_with_no_tensorflow_chatter(tmp_path: Path) -> None:
    model = tiny_keras(tmp_path / "tiny.keras")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    serve = Serve(data_dir, free_udp_port(), tmp_path / "cache", tmp_path / "serve.log")  # a cold cache: TF runs
    fleet = Fleet(builds.server_public_key(data_dir))
    try:
        url = await serve.start()
        await fleet.add(f"coap://127.0.0.1:{serve.args[5]}", "log-1", M4F)
        async with httpx.AsyncClient(base_url=url, timeout=300.0,
                                     headers={"Authorization": f"Bearer {serve.token}"}) as http:
            async def profiled() -> bool:
                return bool((await http.get("/api/devices/log-1")).json().get("profile"))

            await wait_for(profiled, 15, "the device's profile")
            upload = await http.post("/api/models", files={"file": ("tiny.keras", model.read_bytes())},
                                     data={"name": "tiny"})  # fmt: skip
            assert upload.status_code == 201, upload.text
            plan = await http.post("/api/models/tiny/plan", params={"ep": "log-1"})
            assert plan.status_code == 200, plan.text
            variants = {v["variant"] for v in plan.json()["classes"][0]["report"]["variants"]}
            assert "float32" in variants  # TensorFlow converted it in a worker
    finally:
        await fleet.stop()
        serve.terminate()
    handoff = ("READY ", "ADMIN_TOKEN ")  # the two lines serve prints on stdout for its caller
    lines = [ln for ln in serve.log.read_text().splitlines() if ln.strip() and not ln.startswith(handoff)]
    assert lines
    for line in lines:
        record = json.loads(line)  # one JSON object per line, nothing else
        assert isinstance(record, dict) and "event" in record, line
        assert not any(word in line for word in CHATTER), line
