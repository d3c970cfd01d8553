"""GET /metrics parses as Prometheus text and reflects devices, events and HTTP requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiocoap
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


class _Silent(asyncio.DatagramProtocol):
    """A UDP socket that swallows every datagram: a device that stopped answering."""


def _coap(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], direction: str, method: str,
          code: str) -> float:
    key = ("tinymlaas_coap_requests_total", (("code", code), ("direction", direction), ("method", method)))
    return samples.get(key, 0.0)


async def test_metrics_count_coap_requests_by_method_and_code(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        device = await stack.add_device("coap-a", version="1.1")
        before = _samples((await stack.http.get("/metrics")).text)
        # inventory traffic after Register already went out: reads of /3/0 ... and observes (GET 2.05)
        assert _coap(before, "out", "GET", "2.05") >= 3
        assert _coap(before, "in", "POST", "2.01") == 1

        assert (await stack.http.get("/api/devices/coap-a/3/0/0")).status_code == 200
        assert (await stack.http.get("/api/devices/coap-a/3/0/0")).status_code == 200
        assert (await stack.http.put("/api/devices/coap-a/1/0/1", json=120)).status_code == 200
        missing = await stack.http.get("/api/devices/coap-a/3/7/0")
        assert missing.status_code == 502 and missing.json()["error"] == "4.04", missing.text

        # a malformed Register (no ep) from a real CoAP client: answered 4.00 by /rd
        client = await aiocoap.Context.create_client_context()
        try:
            bad = aiocoap.Message(code=aiocoap.POST, uri=f"{stack.coap_uri}/rd?lt=60", payload=b"</3/0>")
            answer = await asyncio.wait_for(client.request(bad).response, 10.0)
            assert str(answer.code) == "4.00 Bad Request"
        finally:
            await client.shutdown()

        # the device goes silent (no de-register; its port swallows datagrams): the next read times out
        port = device.port
        await device.stop(deregister=False)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(_Silent, local_addr=("127.0.0.1", port))
        try:
            timed_out = await stack.http.get("/api/devices/coap-a/3/0/0", params={"timeout": "0.5"})
            assert timed_out.status_code == 504, timed_out.text
        finally:
            transport.close()

        after = _samples((await stack.http.get("/metrics")).text)
        assert _coap(after, "out", "GET", "2.05") - _coap(before, "out", "GET", "2.05") == 2
        assert _coap(after, "out", "PUT", "2.04") - _coap(before, "out", "PUT", "2.04") == 1
        assert _coap(after, "out", "GET", "4.04") - _coap(before, "out", "GET", "4.04") == 1
        assert _coap(after, "out", "GET", "timeout") - _coap(before, "out", "GET", "timeout") == 1
        assert _coap(after, "in", "POST", "4.00") == 1
        assert _coap(after, "in", "POST", "2.01") == 1
        rd = after[("tinymlaas_rd_requests_total", (("outcome", "rejected"),))]
        assert rd == 1
