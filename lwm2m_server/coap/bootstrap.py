"""The LwM2M bootstrap interface over aiocoap: ``POST /bs?ep=<name>`` (Bootstrap-Request), on every listener
the site serves (plain and coaps).

The request is answered 2.04 at once; the server then runs the provider's plan against the device
(:class:`lwm2m_server.protocol.bootstrap.BootstrapSequence`: Delete /0 /1, Write /0/1 and /1/0, Finish), sent by
the :class:`~lwm2m_server.coap.device_client.DeviceClient` over the remote the Bootstrap-Request came from (the
device's address, or its DTLS session). A malformed request, or an endpoint the provider refuses (no config, a
DTLS identity that is not the endpoint's bootstrap identity), is answered 4.00 and nothing is sent.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code

from lwm2m_server.coap.device_client import DeviceClient
from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.coap.exchange import RequestSpec
from lwm2m_server.coap.rd import error_reply, identity_of, peer_address
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.bootstrap import (
    BOOTSTRAP_URI_PATH,
    BootstrapError,
    BootstrapSequence,
    BootstrapStep,
    State,
    parse_bootstrap_request,
)

log = get_logger(__name__)
MAX_RUNNING = 256  # concurrent bootstrap sequences; beyond that a Bootstrap-Request gets 5.03


class BootstrapProvider(Protocol):
    async def provision(self, endpoint: str, identity: str | None, peer: str) -> list[BootstrapStep]:
        """The plan for ``endpoint`` (credentials it writes are stored first); raises BootstrapError (audited)."""
        ...

    async def finished(self, endpoint: str, peer: str, error: str | None) -> None:
        """The sequence ended: ``error`` None when the device accepted every step."""
        ...


class BootstrapResource(resource.Resource):
    def __init__(self, provider: BootstrapProvider, client: DeviceClient, timeout_s: float | None = None) -> None:
        super().__init__()
        self.provider = provider
        self.client = client
        self.timeout_s = timeout_s
        self._running: set[asyncio.Task[None]] = set()

    def get_link_description(self) -> None:
        return None

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        host, port = peer_address(request)
        peer = f"{host}:{port}"
        if len(self._running) >= MAX_RUNNING:
            return aiocoap.Message(code=Code.SERVICE_UNAVAILABLE, payload=b"too many bootstraps running")
        try:
            endpoint = parse_bootstrap_request(request.opt.uri_query)
            steps = await self.provider.provision(endpoint, identity_of(request), peer)
        except BootstrapError as exc:
            log.info("bootstrap_refused", peer=peer, error=str(exc))
            return error_reply(exc.coap_code, str(exc))
        task = asyncio.create_task(self._run(endpoint, request.remote, peer, steps))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return aiocoap.Message(code=Code.CHANGED)

    async def _run(self, endpoint: str, remote: Any, peer: str, steps: list[BootstrapStep]) -> None:
        await asyncio.sleep(0)  # let the 2.04 go out first
        seq = BootstrapSequence(steps)
        while (step := seq.current) is not None:
            spec = RequestSpec(step.method, "/".join(step.uri_path), step.payload,
                               content_format=step.content_format)
            try:
                resp = await self.client.send_unregistered(remote, spec, endpoint, self.timeout_s)
            except DeviceError as exc:
                seq.fail(str(exc))
                break
            seq.answer(resp.code)
        error = None if seq.state is State.DONE else seq.error
        log.info("bootstrap_finished", endpoint=endpoint, peer=peer, ok=error is None, error=error)
        await self.provider.finished(endpoint, peer, error)

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()

    async def drain(self) -> None:
        """Wait for the running sequences (tests, shutdown)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


def add_bootstrap_resource(site: resource.Site, res: BootstrapResource) -> None:
    site.add_resource(BOOTSTRAP_URI_PATH, res)
