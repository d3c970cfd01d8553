"""GET /metrics parses as Prometheus text and reflects devices, events and HTTP requests."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api.conftest import M0, running_stack


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_reflect_the_fleet(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        await stack.add_device("met-a", version="1.1")
        await stack.add_device("met-b", version="1.0", profile=M0)
        assert (await stack.http.get("/api/devices/met-a/3/0/0")).status_code == 200
        assert (await stack.http.get("/api/devices/ghost")).status_code == 404

        response = await stack.http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)
        assert samples[("tinymlaas_devices_registered", ())] == 2
        assert samples[("tinymlaas_devices_online", ())] == 2
        assert samples[("tinymlaas_devices_sleeping", ())] == 0
        assert samples[("tinymlaas_devices_by_lwm2m_version", (("version", "1.0"),))] == 1
        assert samples[("tinymlaas_devices_by_lwm2m_version", (("version", "1.1"),))] == 1
        assert samples[("tinymlaas_events_total", (("type", "registered"),))] == 2
        assert samples[("tinymlaas_rd_requests_total", (("outcome", "registered"),))] == 2
        read = (("method", "GET"), ("route", "/api/devices/{endpoint}/{path:path}"), ("status", "200"))
        assert samples[("tinymlaas_http_requests_total", read)] >= 1
        missing = (("method", "GET"), ("route", "/api/devices/{endpoint}"), ("status", "404"))
        assert samples[("tinymlaas_http_requests_total", missing)] == 1

        await stack.devices.pop("met-b").stop()
        samples = _samples((await stack.http.get("/metrics")).text)
        assert samples[("tinymlaas_devices_registered", ())] == 1
        assert samples[("tinymlaas_events_total", (("type", "deregistered"),))] == 1
