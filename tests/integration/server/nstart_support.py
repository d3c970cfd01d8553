"""What the NSTART tests share: a server with the fast push on and one hand-driven device registered on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from lwm2m_server.coap.exchange import RawResponse
from lwm2m_server.server import LwM2MServer
from tests.integration.server import wire
from tests.integration.server.conftest import make_settings

D = TypeVar("D", bound=wire.UdpPeer)


@asynccontextmanager
async def registered_device(tmp_path: Path, device: Callable[[], D], endpoint: str,
                            resources: dict[tuple[str, ...], Any] | None = None,
                            ) -> AsyncIterator[tuple[LwM2MServer, D]]:  # fmt: skip
    """The server (inventory off, extra ``resources`` on its site) and ``device()`` registered as ``endpoint``,
    with the fast client connected."""
    server = LwM2MServer(make_settings(tmp_path, coap_fast_push=True), inventory=False)
    for path, res in (resources or {}).items():
        server.site.add_resource(path, res)
    await server.start()
    loop = asyncio.get_running_loop()
    _, dev = await loop.create_datagram_endpoint(device, remote_addr=("127.0.0.1", server.coap_port))
    try:
        dev.send(wire.register(0x0101, b"\x01", [f"ep={endpoint}", "lt=300", "lwm2m=1.1"], b"</3/0>,</5/0>"))
        assert (await dev.recv()).code_str == "2.01"
        assert server.client.fast is not None and server.client.fast.connected
        yield server, dev
    finally:
        dev.close()
        await server.stop()


def push_block(server: LwM2MServer, endpoint: str) -> asyncio.Task[RawResponse]:
    """One Block1 block: carried by the fast client."""
    return asyncio.create_task(server.client.raw_request(endpoint, "PUT", "/5/0/0", b"\x00" * 16, content_format=42,
                                                         block1=(0, 0, False)))  # fmt: skip
