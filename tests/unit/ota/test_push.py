"""Manual Block1 push against a real aiocoap receiver on loopback: sizes, SZX step-down, 4.13 handling."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiocoap
import pytest
from aiocoap.optiontypes import BlockOption
from aiocoap.resource import Resource, Site

from lwm2m_server.ota.push import BlockReply, PushError, push_package, szx_for
from tests.unit.ota.conftest import start_site

DATA = os.urandom(3000)


class Receiver(Resource):  # type: ignore[misc]
    """A device stand-in for /5/0/0: assembles Block1 itself and can impose a maximum SZX or a total limit."""

    def __init__(self, max_szx: int = 6, mode: str = "continue", limit: int | None = None) -> None:
        super().__init__()
        self.max_szx, self.mode, self.limit = max_szx, mode, limit
        self.buf = bytearray()
        self.sizes: list[int] = []
        self.done: bytes | None = None

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return False

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        b1 = request.opt.block1
        if request.opt.content_format != 42:
            return aiocoap.Message(code=aiocoap.UNSUPPORTED_CONTENT_FORMAT)
        if self.limit is not None and request.opt.size1 is not None and request.opt.size1 > self.limit:
            resp = aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE)
            resp.opt.size1 = self.limit
            return resp
        if b1.size_exponent > self.max_szx:
            if self.mode == "413-block1":
                resp = aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE)
                resp.opt.block1 = BlockOption.BlockwiseTuple(0, 0, self.max_szx)
                return resp
            if self.mode == "413-size1":
                resp = aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE)
                resp.opt.size1 = 1 << (self.max_szx + 4)
                return resp
        if b1.start != len(self.buf):
            return aiocoap.Message(code=aiocoap.REQUEST_ENTITY_INCOMPLETE)
        self.buf += request.payload
        self.sizes.append(len(request.payload))
        if b1.more:
            resp = aiocoap.Message(code=aiocoap.CONTINUE)
            resp.opt.block1 = BlockOption.BlockwiseTuple(b1.block_number, 1, min(b1.size_exponent, self.max_szx))
            return resp
        self.done = bytes(self.buf)
        resp = aiocoap.Message(code=aiocoap.CHANGED)
        resp.opt.block1 = b1
        return resp


def sender(client: aiocoap.Context, port: int):  # type: ignore[no-untyped-def]
    async def send(chunk: bytes, num: int, more: bool, szx: int, size1: int | None) -> BlockReply:
        req = aiocoap.Message(code=aiocoap.PUT, uri=f"coap://127.0.0.1:{port}/5/0/0", payload=chunk)
        req.opt.content_format = 42
        req.opt.block1 = BlockOption.BlockwiseTuple(num, more, szx)
        if size1 is not None:
            req.opt.size1 = size1
        resp = await client.request(req, handle_blockwise=False).response
        b1 = resp.opt.block1
        code = resp.code.dotted
        return BlockReply(code, (b1.block_number, bool(b1.more), b1.size_exponent) if b1 else None, resp.opt.size1)

    return send


@pytest.fixture
async def device(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Receiver, int]]:
    receiver = Receiver(**getattr(request, "param", {}))
    site = Site()
    site.add_resource(("5", "0", "0"), receiver)
    ctx, port = await start_site(site)
    yield receiver, port
    await ctx.shutdown()


@pytest.mark.parametrize("block_size", [16, 256, 1024])
async def test_push_at_each_block_size(
    device: tuple[Receiver, int], coap_client: aiocoap.Context, block_size: int
) -> None:
    receiver, port = device
    seen: list[tuple[int, int, int]] = []
    result = await push_package(
        DATA, sender(coap_client, port), block_size=block_size, progress=lambda *a: seen.append(a)
    )
    assert receiver.done == DATA
    assert result.blocks_sent == -(-len(DATA) // block_size)
    assert seen[-1] == (result.blocks_sent, len(DATA), len(DATA))
    assert set(receiver.sizes[:-1]) == {block_size}


@pytest.mark.parametrize("device", [{"max_szx": 2}], indirect=True)
async def test_device_forcing_smaller_szx_in_continue(
    device: tuple[Receiver, int], coap_client: aiocoap.Context
) -> None:
    receiver, port = device
    result = await push_package(DATA, sender(coap_client, port), block_size=1024)
    assert receiver.done == DATA
    assert receiver.sizes[0] == 1024 and set(receiver.sizes[1:-1]) == {64}
    assert result.final_szx == 2 and result.step_downs == 1


@pytest.mark.parametrize(
    "device", [{"max_szx": 4, "mode": "413-block1"}, {"max_szx": 3, "mode": "413-size1"}], indirect=True
)
async def test_413_steps_down_and_resends_same_offset(
    device: tuple[Receiver, int], coap_client: aiocoap.Context
) -> None:
    receiver, port = device
    result = await push_package(DATA, sender(coap_client, port), block_size=1024)
    assert receiver.done == DATA
    assert result.final_szx == receiver.max_szx
    assert set(receiver.sizes[:-1]) == {1 << (receiver.max_szx + 4)}


@pytest.mark.parametrize("device", [{"limit": 2000}], indirect=True)
async def test_413_with_size1_below_package_is_too_large(
    device: tuple[Receiver, int], coap_client: aiocoap.Context
) -> None:
    receiver, port = device
    with pytest.raises(PushError) as err:
        await push_package(DATA, sender(coap_client, port), block_size=1024)
    assert err.value.too_large and err.value.code == "4.13"
    assert receiver.done is None


def test_szx_for_rejects_bad_sizes() -> None:
    assert [szx_for(1 << (s + 4)) for s in range(7)] == list(range(7))
    with pytest.raises(ValueError):
        szx_for(100)
    with pytest.raises(ValueError):
        szx_for(2048)
