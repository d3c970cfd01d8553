"""A :class:`~lwm2m_server.coap.exchange.RequestSpec` sent by the fast client instead of aiocoap.

Same request bytes (Uri-Path under the registration's root, Uri-Query, Content-Format, Accept, Block1, Size1)
and the same :class:`~lwm2m_server.coap.exchange.RawResponse` and typed failures as
:func:`lwm2m_server.coap.exchange.send`, so a caller cannot tell which stack carried its request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from lwm2m_server.coap.errors import DeviceError, DeviceTimeout
from lwm2m_server.coap.exchange import METHODS, RawResponse, RequestSpec, uri_path
from lwm2m_server.coap.fast_client import FastClient, FastClientError, socket_address
from lwm2m_server.protocol import coapmsg as m
from lwm2m_server.registration import Registration


def spec_options(reg: Registration, spec: RequestSpec) -> tuple[tuple[int, bytes], ...]:
    opts: list[tuple[int, bytes]] = [(m.URI_PATH, seg.encode()) for seg in uri_path(reg, spec.path)]
    if spec.content_format is not None:
        opts.append((m.CONTENT_FORMAT, m.uint_option(spec.content_format)))
    opts.extend((m.URI_QUERY, q.encode()) for q in spec.query)
    if spec.accept is not None:
        opts.append((m.ACCEPT, m.uint_option(spec.accept)))
    if spec.block1 is not None:
        num, szx, more = spec.block1
        opts.append((m.BLOCK1, m.block_option(num, more, szx)))
    if spec.size1 is not None:
        opts.append((m.SIZE1, m.uint_option(spec.size1)))
    return tuple(opts)


def _uint(msg: m.CoapMessage, number: int) -> int | None:
    values = msg.option_values(number)
    return int.from_bytes(values[0], "big") if values else None


def _block(msg: m.CoapMessage, number: int) -> tuple[int, int, bool] | None:
    values = msg.option_values(number)
    if not values:
        return None
    num, more, szx = m.parse_block(values[0])
    return num, szx, more


def raw_response(msg: m.CoapMessage) -> RawResponse:
    etag = msg.option_values(m.ETAG)
    return RawResponse(
        code=m.code_class(msg.code),
        payload=msg.payload,
        content_format=_uint(msg, m.CONTENT_FORMAT),
        location_path=tuple(v.decode("utf-8", "replace") for v in msg.option_values(m.LOCATION_PATH)),
        block1=_block(msg, m.BLOCK1),
        block2=_block(msg, m.BLOCK2),
        size1=_uint(msg, m.SIZE1),
        etag=etag[0] if etag else None,
        options={"max_age": _uint(msg, m.MAX_AGE), "observe": _uint(msg, m.OBSERVE)},
    )


@contextlib.contextmanager
def device_errors(reg: Registration, what: str, timeout: float) -> Iterator[None]:
    """The fast client's failures as aiocoap's: :class:`DeviceTimeout` / :class:`DeviceError` ``network``."""
    try:
        yield
    except TimeoutError as exc:
        raise DeviceTimeout(f"{what}: no response in {timeout:g}s", endpoint=reg.endpoint) from exc
    except FastClientError as exc:
        if exc.reason == "timeout":
            raise DeviceTimeout(f"{what}: no response after retransmissions", endpoint=reg.endpoint) from exc
        raise DeviceError("network", f"{what}: {exc.reason}", endpoint=reg.endpoint) from exc
    except m.CoapFormatError as exc:
        raise DeviceError("network", f"{what}: malformed response: {exc}", endpoint=reg.endpoint) from exc


async def send_fast(client: FastClient, reg: Registration, spec: RequestSpec, timeout: float) -> RawResponse:
    """Send ``spec`` to the device's plain address; :class:`DeviceTimeout` / :class:`DeviceError` as aiocoap's."""
    try:
        code = METHODS[spec.method.upper()]
    except KeyError:
        raise ValueError(f"unknown CoAP method {spec.method!r}") from None
    with device_errors(reg, f"{spec.method} {spec.path}", timeout):
        async with asyncio.timeout(timeout):
            msg = await client.request(socket_address(reg.host, reg.port), int(code), spec_options(reg, spec),
                                       spec.payload)  # fmt: skip
        return raw_response(msg)
