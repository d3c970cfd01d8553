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

from aiocoap import BAD_OPTION, BAD_REQUEST, CONTENT, GET, METHOD_NOT_ALLOWED, NOT_FOUND, Message
from aiocoap.interfaces import Resource as ResourceInterface
from aiocoap.optiontypes import BlockOption
from aiocoap.resource import PathCapable

from lwm2m_server.logging import get_logger

log = get_logger(__name__)

SHA_RE = re.compile(r"^[0-9a-f]{64}$")
OPAQUE = 42
DEFAULT_SZX = 6  # 1024 bytes when the client does not ask for a size (RFC 7959 late negotiation)

BlobLookup = Callable[[str], Awaitable[bytes | None]]


def etag_for(sha256_hex: str) -> bytes:
    """The stable ETag of a package: the first 8 bytes of its sha256."""
    return bytes.fromhex(sha256_hex[:16])


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

    async def render(self, request: Message) -> Message:
        try:
            return await self._render(request)
        except Exception:  # a bad request must never take the server down
            log.exception("fw.render_failed")
            return Message(code=BAD_REQUEST, payload=b"internal error")

    async def _render(self, request: Message) -> Message:
        path = tuple(request.opt.uri_path)
        if len(path) != 1 or not SHA_RE.match(path[0]):
            return Message(code=NOT_FOUND)
        if request.code != GET:
            return Message(code=METHOD_NOT_ALLOWED)
        sha = path[0]
        block2 = request.opt.block2
        if block2 is not None and block2.size_exponent == 7:
            return Message(code=BAD_REQUEST, payload=b"SZX 7 (BERT) is not valid over UDP")
        blob = await self._lookup(sha)
        if blob is None:
            return Message(code=NOT_FOUND)
        szx = block2.size_exponent if block2 is not None else self._default_szx
        number = block2.block_number if block2 is not None else 0
        size = 1 << (szx + 4)
        start = number * size
        if block2 is None and len(blob) <= size:
            return self._respond(request, sha, blob, 0, blob, None)
        if start >= len(blob) and not (start == 0 and not blob):
            return Message(code=BAD_OPTION, payload=b"block number past the end")
        chunk = blob[start : start + size]
        more = start + size < len(blob)
        return self._respond(request, sha, blob, start, chunk, BlockOption.BlockwiseTuple(number, more, szx))

    def _respond(
        self,
        request: Message,
        sha: str,
        blob: bytes,
        start: int,
        chunk: bytes,
        block: BlockOption.BlockwiseTuple | None,
    ) -> Message:
        response = Message(code=CONTENT, payload=chunk, content_format=OPAQUE)
        response.opt.etag = etag_for(sha)
        response.opt.size2 = len(blob)
        if block is not None:
            response.opt.block2 = block
        st = self.stats.setdefault(sha, ServeStats())
        st.blocks += 1
        st.bytes += len(chunk)
        st.last_block_by_remote[_remote_key(request.remote)] = (start + len(chunk), len(blob))
        return response


def _remote_key(remote: object) -> str:
    """``host:port`` of the client, cheaply (aiocoap's ``hostinfo`` parses addresses on every call)."""
    sockaddr = getattr(remote, "sockaddr", None)
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        host = str(sockaddr[0])
        if host.startswith("::ffff:"):
            host = host[7:]
        return f"{host}:{sockaddr[1]}"
    return str(getattr(remote, "hostinfo", remote))
