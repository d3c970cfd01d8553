"""Test kit for Object 5 on the device: signed KWS packages, a plain Block2 file server that records
the blocks it serves, a manual Block1 pusher, and helpers that wait for State/Update Result."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import aiocoap
from aiocoap import GET, POST, PUT, Code, Message
from aiocoap.optiontypes import BlockOption
from aiocoap.resource import Resource
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compilers.package import build_package
from lwm2m_server.protocol.paths import LwM2MPath
from simulator.device import SimulatedDevice

KWS = Path("/work/shared/models/mlperf-tiny/kws_ref_model.tflite")
if not KWS.exists():  # CI checkouts keep the model next to the repo
    KWS = Path(__file__).resolve().parents[4] / "shared" / "models" / "mlperf-tiny" / "kws_ref_model.tflite"

STATE, RESULT = LwM2MPath(5, 0, 3), LwM2MPath(5, 0, 5)


@dataclass(frozen=True)
class SignedModel:
    package: bytes
    payload: bytes
    public_key: bytes
    sha256: str


@cache
def kws_package() -> SignedModel:
    payload = KWS.read_bytes()
    key = Ed25519PrivateKey.generate()
    package = build_package(
        payload=payload, signing_key=key, name="kws", version="3", variant="int8", arena_bytes=22 * 1024
    )
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SignedModel(package, payload, public, hashlib.sha256(payload).hexdigest())


class FileResource(Resource):
    """Serves fixed bytes block by block (stateless Block2, stable ETag, Size2); logs every block request."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data
        self.etag = hashlib.sha256(data).digest()[:8]
        self.requests: list[tuple[int, int]] = []  # (block number, szx)

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return False

    async def render_get(self, request: Message) -> Message:
        b2 = request.opt.block2 or BlockOption.BlockwiseTuple(0, False, 6)
        self.requests.append((b2.block_number, b2.size_exponent))
        start = b2.block_number * b2.size
        if start >= len(self.data) and start > 0:
            return Message(code=Code.BAD_OPTION)
        chunk = self.data[start : start + b2.size]
        response = Message(code=Code.CONTENT, payload=chunk, content_format=42)
        response.opt.block2 = BlockOption.BlockwiseTuple(
            b2.block_number, start + b2.size < len(self.data), b2.size_exponent
        )
        response.opt.etag = self.etag
        response.opt.size2 = len(self.data)
        return response


@dataclass
class PushLog:
    szx: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    size1: int | None = None


async def push(ctx: aiocoap.Context, port: int, data: bytes, szx: int, *, timeout: float = 10) -> PushLog:
    """Block1 PUT /5/0/0 by hand, following the device's SZX (RFC 7959 §2.5); stops at the first error."""
    log = PushLog()
    offset = 0
    num = 0
    while True:
        size = 1 << (szx + 4)
        chunk = data[offset : offset + size]
        more = offset + size < len(data)
        msg = Message(code=PUT, uri=f"coap://127.0.0.1:{port}/5/0/0", payload=chunk, content_format=42)
        msg.opt.block1 = BlockOption.BlockwiseTuple(num, more, szx)
        if num == 0:
            msg.opt.size1 = len(data)
        response = await asyncio.wait_for(ctx.request(msg, handle_blockwise=False).response, timeout)
        log.szx.append(szx)
        log.codes.append(response.code.dotted)
        log.size1 = response.opt.size1
        if not response.code.is_successful() or not more:
            return log
        offset += len(chunk)
        if response.opt.block1 is not None and response.opt.block1.size_exponent < szx:
            szx = response.opt.block1.size_exponent
        num = offset // (1 << (szx + 4))


async def coap(
    ctx: aiocoap.Context, port: int, code: Code, path: str, payload: bytes = b"", cf: int | None = None
) -> Message:
    msg = Message(code=code, uri=f"coap://127.0.0.1:{port}{path}", payload=payload)
    if cf is not None:
        msg.opt.content_format = cf
    return await asyncio.wait_for(ctx.request(msg).response, 10)


async def write_uri(ctx: aiocoap.Context, port: int, uri: str) -> Message:
    return await coap(ctx, port, PUT, "/5/0/1", uri.encode(), cf=0)


async def execute(ctx: aiocoap.Context, port: int, path: str = "/5/0/2") -> Message:
    return await coap(ctx, port, POST, path)


async def read_text(ctx: aiocoap.Context, port: int, path: str) -> str:
    msg = Message(code=GET, uri=f"coap://127.0.0.1:{port}{path}")
    msg.opt.accept = 0
    response = await asyncio.wait_for(ctx.request(msg).response, 10)
    assert response.code == Code.CONTENT, (path, response.code, response.payload)
    return response.payload.decode()


async def wait_for(device: SimulatedDevice, state: int, result: int | None = None, timeout: float = 20) -> None:
    """Poll the device's own Object 5 until it shows ``state`` (and ``result``)."""
    assert device.objects is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        s, r = device.objects.get(STATE), device.objects.get(RESULT)
        if s == state and (result is None or r == result):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"device stayed in state {device.objects.get(STATE)} result {device.objects.get(RESULT)}, "
        f"wanted {state}/{result}"
    )


def record_states(device: SimulatedDevice) -> list[int]:
    """Every State value the device goes through from now on."""
    assert device.objects is not None
    seen: list[int] = []
    store = device.objects
    store.add_listener(lambda p: seen.append(int(store.get(STATE))) if p == STATE else None)
    return seen
