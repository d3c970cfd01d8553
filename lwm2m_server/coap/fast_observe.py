"""A plain observation of a plain-CoAP device on the fast path alone: the fast client sends GET with Observe 0
and :class:`~lwm2m_server.coap.fast_notifications.FastNotifications` takes every later datagram on its token.

aiocoap kept, for each observation, a blockwise request, two tasks, two client observations and the request's
pipe (~13 KB and 2 tasks: with the inventory's three observations a device, 40 KB of the 50 KB a registered
device cost). Here it is the watch entry and the server's own handles. A response or notification in blocks
(RFC 7959 §2.6) is completed with plain GETs for the following blocks (no Observe) before it is decoded.
"""

from __future__ import annotations

import asyncio
import dataclasses

from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.coap.exchange import RawResponse, RequestSpec
from lwm2m_server.coap.fast_client import Address, FastClient, socket_address
from lwm2m_server.coap.fast_exchange import device_errors, raw_response, spec_options
from lwm2m_server.protocol import coapmsg as m
from lwm2m_server.registration import Registration

GET = 1
MAX_BLOCKWISE_BYTES = 64 * 1024  # a notification's whole representation (more is a broken or hostile device)


@dataclasses.dataclass(frozen=True, slots=True)
class FastObserveRequest:
    """What a fast observation asks for: the device's address and the options of its GET (without Observe)."""

    address: Address
    options: tuple[tuple[int, bytes], ...]

    @classmethod
    def of(cls, reg: Registration, spec: RequestSpec) -> FastObserveRequest:
        return cls(socket_address(reg.host, reg.port), spec_options(reg, spec))


async def observe_request(client: FastClient, reg: Registration, req: FastObserveRequest, what: str,
                          timeout: float) -> tuple[bytes, RawResponse]:  # fmt: skip
    """Send the observe request; (its token, the whole first answer). DeviceTimeout/DeviceError as aiocoap's."""
    with device_errors(reg, what, timeout):
        async with asyncio.timeout(timeout):
            msg = await client.request(req.address, GET, ((m.OBSERVE, b""), *req.options))
            resp = raw_response(msg)
            if resp.success and resp.block2 is not None and resp.block2[2]:
                resp = await rest_of_blocks(client, req, resp, reg.endpoint, what)
    return msg.token, resp


async def rest_of_blocks(client: FastClient, req: FastObserveRequest, first: RawResponse, endpoint: str,
                         what: str) -> RawResponse:  # fmt: skip
    """``first`` (block 0 of several) completed with GETs for the following blocks, as one response."""
    assert first.block2 is not None
    num, szx, more = first.block2
    payload = bytearray(first.payload)
    while more:
        num += 1
        msg = await client.request(req.address, GET, (*req.options, (m.BLOCK2, m.block_option(num, False, szx))))
        part = raw_response(msg)
        if not part.success or part.block2 is None or part.block2[0] != num or part.block2[1] != szx:
            raise DeviceError("network", f"{what}: block {num} answered {part.code} {part.block2}",
                              endpoint=endpoint)  # fmt: skip
        payload += part.payload
        more = part.block2[2]
        if len(payload) > MAX_BLOCKWISE_BYTES:
            raise DeviceError("network", f"{what}: more than {MAX_BLOCKWISE_BYTES} bytes in blocks",
                              endpoint=endpoint)  # fmt: skip
    return dataclasses.replace(first, payload=bytes(payload), block2=None)
