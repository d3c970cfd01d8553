"""``/fw/<sha256>``: immutable packages served with stateless Block2 (RFC 7959) for LwM2M pull.

aiocoap's own blockwise support keeps a per-client cache of the rendered body and answers only the blocks it
expects; devices that resume a download (Anjay by ETag, ours after a reboot), reuse one token for every block
(Zephyr) or pick a small SZX need any block answered from the content alone. So this resource turns aiocoap's
assembly off (``needs_blockwise_assembly`` -> False) and slices the package itself: block ``n`` at size
``2**(szx+4)`` is bytes ``[n*size, (n+1)*size)``, with a stable ETag (first 8 bytes of the sha256) and Size2.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from aiocoap import BAD_OPTION, BAD_REQUEST, CONTENT, GET, METHOD_NOT_ALLOWED, NOT_FOUND, Message
from aiocoap.interfaces import Resource as ResourceInterface
from aiocoap.optiontypes import BlockOption
from aiocoap.resource import PathCapable

from lwm2m_server.coap.fastpath import FastAnswer
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol import coapmsg

log = get_logger(__name__)

SHA_RE = re.compile(r"^[0-9a-f]{64}$")
OPAQUE = 42
DEFAULT_SZX = 6  # 1024 bytes when the client does not ask for a size (RFC 7959 late negotiation)

BlobLookup = Callable[[str], Awaitable[bytes | None]]


def etag_for(sha256_hex: str) -> bytes:
    """The stable ETag of a package: the first 8 bytes of its sha256."""
    return bytes.fromhex(sha256_hex[:16])


Block = tuple[int, bool, int]  # Block2 (number, more, szx)


class FwAnswer(NamedTuple):
    """A /fw answer independent of the CoAP stack: the aiocoap resource and the datagram fast path encode it."""

    code: str
    payload: bytes = b""
    etag: bytes | None = None  # with etag: a 2.05 Content of an opaque package (Size2, maybe Block2)
    size2: int | None = None
    block2: Block | None = None

    def to_message(self) -> Message:
        msg = Message(code=_AIOCOAP_CODES[self.code], payload=self.payload)
        if self.etag is not None:
            msg.opt.content_format = OPAQUE
            msg.opt.etag = self.etag
            msg.opt.size2 = self.size2
            if self.block2 is not None:
                msg.opt.block2 = BlockOption.BlockwiseTuple(*self.block2)
        return msg

    def options(self) -> tuple[tuple[int, bytes], ...]:
        """The response options as raw (number, value) pairs (RFC 7252 / 7959 encodings)."""
        if self.etag is None:
            return ()
        opts = [(coapmsg.ETAG, self.etag), (coapmsg.CONTENT_FORMAT, coapmsg.uint_option(OPAQUE)),
                (coapmsg.SIZE2, coapmsg.uint_option(self.size2 or 0))]  # fmt: skip
        if self.block2 is not None:
            num, more, szx = self.block2
            opts.append((coapmsg.BLOCK2, coapmsg.uint_option(num << 4 | int(more) << 3 | szx)))
        return tuple(opts)


_AIOCOAP_CODES = {"2.05": CONTENT, "4.00": BAD_REQUEST, "4.02": BAD_OPTION, "4.04": NOT_FOUND,
                  "4.05": METHOD_NOT_ALLOWED}  # fmt: skip


@dataclass
class ServeStats:
    """What was served for one package; the OTA job reads it for the 'blocks served' progress figure."""

    blocks: int = 0
    bytes: int = 0
    last_block_by_remote: dict[str, tuple[int, int]] = field(default_factory=dict)  # remote -> (offset end, size)


class FirmwareResource(ResourceInterface, PathCapable):  # type: ignore[misc]
    """Serve packages by sha256 from ``lookup``; no per-client state beyond counters."""

    def __init__(self, lookup: BlobLookup, *, default_szx: int = DEFAULT_SZX) -> None:
        super().__init__()
        self._lookup = lookup
        self._default_szx = default_szx
        self.stats: dict[str, ServeStats] = {}

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return False

    async def render_to_pipe(self, pipe) -> None:  # type: ignore[no-untyped-def]
        pipe.add_response(await self.render(pipe.request), is_last=True)

    # -- fast path (lwm2m_server.coap.fastpath.FastHandler): CON GET /fw/<sha> with at most a Block2 option ---
    fast_options = frozenset({coapmsg.BLOCK2})

    def fast_accepts(self, msg: coapmsg.CoapMessage, path: list[str]) -> bool:
        blocks = msg.option_values(coapmsg.BLOCK2)
        return msg.code == coapmsg.GET and len(path) == 2 and len(blocks) <= 1 and all(len(b) <= 3 for b in blocks)

    async def fast_answer(self, msg: coapmsg.CoapMessage, path: list[str], query: list[str],
                          peer: tuple[str, int]) -> FastAnswer:  # fmt: skip
        blocks = msg.option_values(coapmsg.BLOCK2)
        blk: Block | None = None
        if blocks:
            value = int.from_bytes(blocks[0], "big")
            blk = (value >> 4, bool(value & 0x08), value & 0x07)
        answer = await self.answer(tuple(path[1:]), True, blk, f"{peer[0]}:{peer[1]}")
        return FastAnswer(coapmsg.code_number(answer.code), answer.options(), answer.payload)

    # -- aiocoap ------------------------------------------------------------------------------------------------
    async def render(self, request: Message) -> Message:
        try:
            block2 = request.opt.block2
            blk = (block2.block_number, block2.more, block2.size_exponent) if block2 is not None else None
            answer = await self.answer(tuple(request.opt.uri_path), request.code == GET, blk,
                                       _remote_key(request.remote))  # fmt: skip
        except Exception:  # a bad request must never take the server down
            log.exception("fw.render_failed")
            return Message(code=BAD_REQUEST, payload=b"internal error")
        return answer.to_message()

    async def answer(self, path: tuple[str, ...], is_get: bool, block2: Block | None, remote: str) -> FwAnswer:
        """The answer to a request for ``path`` (below ``/fw``), whichever CoAP stack carried it."""
        if len(path) != 1 or not SHA_RE.match(path[0]):
            return FwAnswer("4.04")
        if not is_get:
            return FwAnswer("4.05")
        sha = path[0]
        if block2 is not None and block2[2] == 7:
            return FwAnswer("4.00", b"SZX 7 (BERT) is not valid over UDP")
        blob = await self._lookup(sha)
        if blob is None:
            return FwAnswer("4.04")
        number, _, szx = block2 if block2 is not None else (0, False, self._default_szx)
        size = 1 << (szx + 4)
        start = number * size
        if block2 is None and len(blob) <= size:
            return self._respond(sha, blob, 0, blob, None, remote)
        if start >= len(blob) and not (start == 0 and not blob):
            return FwAnswer("4.02", b"block number past the end")
        chunk = blob[start : start + size]
        more = start + size < len(blob)
        return self._respond(sha, blob, start, chunk, (number, more, szx), remote)

    def _respond(self, sha: str, blob: bytes, start: int, chunk: bytes, block: Block | None,
                 remote: str) -> FwAnswer:  # fmt: skip
        st = self.stats.get(sha)
        if st is None:
            st = self.stats[sha] = ServeStats()
        st.blocks += 1
        st.bytes += len(chunk)
        st.last_block_by_remote[remote] = (start + len(chunk), len(blob))
        return FwAnswer("2.05", chunk, etag_for(sha), len(blob), block)


def _remote_key(remote: object) -> str:
    """``host:port`` of the client, cheaply (aiocoap's ``hostinfo`` parses addresses on every call)."""
    sockaddr = getattr(remote, "sockaddr", None)
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        host = str(sockaddr[0])
        if host.startswith("::ffff:"):
            host = host[7:]
        return f"{host}:{sockaddr[1]}"
    return str(getattr(remote, "hostinfo", remote))
