"""/fw/<sha256> over real loopback UDP: manual Block2 GETs at several SZX, ETag/Size2, malformed requests."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator

import aiocoap
import pytest
from aiocoap.optiontypes import BlockOption
from aiocoap.resource import Site

from lwm2m_server.coap.firmware_resource import FirmwareResource, etag_for
from tests.unit.ota.conftest import start_site

# Seeded: the sha is in parameter ids, which must be the same in every xdist worker's collection.
PACKAGE = random.Random(5000).randbytes(5000) + b"tail"
SHA = hashlib.sha256(PACKAGE).hexdigest()


@pytest.fixture
async def fw_server() -> AsyncIterator[tuple[FirmwareResource, int]]:
    blobs = {SHA: PACKAGE}

    async def lookup(sha: str) -> bytes | None:
        return blobs.get(sha)

    site = Site()
    resource = FirmwareResource(lookup)
    site.add_resource(("fw",), resource)
    ctx, port = await start_site(site)
    yield resource, port
    await ctx.shutdown()


async def get(client: aiocoap.Context, port: int, path: str, block2: tuple[int, int] | None) -> aiocoap.Message:
    req = aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}{path}")
    if block2 is not None:
        req.opt.block2 = BlockOption.BlockwiseTuple(block2[0], 0, block2[1])
    return await client.request(req, handle_blockwise=False).response


@pytest.mark.parametrize("szx", [0, 4, 6])
async def test_manual_block2_download_reassembles_exact_bytes(
    fw_server: tuple[FirmwareResource, int], coap_client: aiocoap.Context, szx: int
) -> None:
    resource, port = fw_server
    size = 1 << (szx + 4)
    got = bytearray()
    num = 0
    while True:
        resp = await get(coap_client, port, f"/fw/{SHA}", (num, szx))
        assert str(resp.code) == "2.05 Content"
        assert resp.opt.etag == etag_for(SHA) == bytes.fromhex(SHA[:16])
        assert resp.opt.size2 == len(PACKAGE)
        assert resp.opt.content_format == 42
        b2 = resp.opt.block2
        assert (b2.block_number, b2.size_exponent) == (num, szx)
        assert len(resp.payload) == (size if b2.more else len(PACKAGE) - num * size)
        got += resp.payload
        if not b2.more:
            break
        num += 1
    assert bytes(got) == PACKAGE
    assert num + 1 == -(-len(PACKAGE) // size)
    assert resource.stats[SHA].bytes == len(PACKAGE)
    (remote, progress), *_ = resource.stats[SHA].last_block_by_remote.items()
    assert remote.startswith("127.0.0.1:") and progress == (len(PACKAGE), len(PACKAGE))


async def test_any_block_answered_statelessly_out_of_order(
    fw_server: tuple[FirmwareResource, int], coap_client: aiocoap.Context
) -> None:
    _, port = fw_server
    last = (len(PACKAGE) - 1) // 256
    resp = await get(coap_client, port, f"/fw/{SHA}", (last, 4))
    assert resp.payload == PACKAGE[last * 256 :]
    assert not resp.opt.block2.more
    resp = await get(coap_client, port, f"/fw/{SHA}", (3, 2))  # switch size mid-way: 64-byte block 3
    assert resp.payload == PACKAGE[192:256]


async def test_no_block2_option_gets_first_1024_bytes(
    fw_server: tuple[FirmwareResource, int], coap_client: aiocoap.Context
) -> None:
    _, port = fw_server
    resp = await get(coap_client, port, f"/fw/{SHA}", None)
    assert resp.payload == PACKAGE[:1024]
    assert resp.opt.block2.more and resp.opt.block2.size_exponent == 6


async def test_aiocoap_automatic_blockwise_client_downloads_all(
    fw_server: tuple[FirmwareResource, int], coap_client: aiocoap.Context
) -> None:
    _, port = fw_server
    req = aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}/fw/{SHA}")
    resp = await coap_client.request(req).response
    assert resp.payload == PACKAGE


@pytest.mark.parametrize(
    ("path", "block2", "code"),
    [
        (f"/fw/{SHA}", (10_000, 4), "4.02"),  # block number past the end
        (f"/fw/{SHA}", (len(PACKAGE) // 1024 + 1, 6), "4.02"),
        (f"/fw/{SHA}", (0, 7), "4.00"),  # BERT size exponent is not valid over UDP
        (f"/fw/{'0' * 64}", (0, 4), "4.04"),  # unknown package
        ("/fw/not-a-sha", None, "4.04"),
        (f"/fw/{SHA}/extra", None, "4.04"),
    ],
)
async def test_malformed_requests_get_4xx_and_server_stays_up(
    fw_server: tuple[FirmwareResource, int],
    coap_client: aiocoap.Context,
    path: str,
    block2: tuple[int, int] | None,
    code: str,
) -> None:
    _, port = fw_server
    resp = await get(coap_client, port, path, block2)
    assert str(resp.code).startswith(code)
    ok = await get(coap_client, port, f"/fw/{SHA}", (0, 4))
    assert ok.payload == PACKAGE[:256]


async def test_put_is_not_allowed(fw_server: tuple[FirmwareResource, int], coap_client: aiocoap.Context) -> None:
    _, port = fw_server
    req = aiocoap.Message(code=aiocoap.PUT, uri=f"coap://127.0.0.1:{port}/fw/{SHA}", payload=b"x")
    resp = await coap_client.request(req, handle_blockwise=False).response
    assert str(resp.code).startswith("4.05")
