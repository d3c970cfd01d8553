"""Push delivery: write a package to /5/0/0 as opaque (ct 42) with manual Block1 (RFC 7959).

Manual because the device decides the block size: we start at the configured size and step down when its 2.31
Continue carries a smaller SZX (the block just sent was accepted; the next one starts at the byte offset already
covered, RFC 7959 §2.5) or when it answers 4.13 Request Entity Too Large with a Block1 or Size1 hint (the block
was refused; it is resent smaller from the same offset). A 4.13 whose Size1 is below the whole package but not
below the block means the package itself is too big for the device: that is "does not fit", not a retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lwm2m_server.logging import get_logger

log = get_logger(__name__)

MIN_SZX, MAX_SZX = 0, 6


@dataclass(frozen=True, slots=True)
class BlockReply:
    """What the device answered to one Block1 request."""

    code: str  # "2.31", "2.04", "4.13", ...
    block1: tuple[int, bool, int] | None = None  # (num, more, szx) echoed/preferred by the device
    size1: int | None = None


# send(payload_chunk, num, more, szx, size1) -> reply ; size1 is the total size, sent with the first block
BlockSender = Callable[[bytes, int, bool, int, int | None], Awaitable[BlockReply]]
Progress = Callable[[int, int, int], None]  # (blocks sent, bytes acknowledged, total bytes)


class PushError(Exception):
    """The device refused the transfer; ``too_large`` means the package cannot fit (do not retry this build)."""

    def __init__(self, message: str, code: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.too_large = too_large


def szx_for(block_size: int) -> int:
    """Block size in bytes (16..1024, power of two) -> SZX; anything else is a ValueError."""
    for szx in range(MIN_SZX, MAX_SZX + 1):
        if 1 << (szx + 4) == block_size:
            return szx
    raise ValueError(f"block size must be a power of two from 16 to 1024, got {block_size}")


def _szx_at_most(nbytes: int) -> int:
    szx = MIN_SZX
    while szx < MAX_SZX and (1 << (szx + 5)) <= nbytes:
        szx += 1
    return szx


def _code(code: str) -> str:
    return code.split(" ", 1)[0]


@dataclass
class PushResult:
    blocks_sent: int
    final_szx: int
    step_downs: int


async def push_package(
    data: bytes,
    send: BlockSender,
    *,
    block_size: int = 1024,
    progress: Progress | None = None,
    max_requests: int | None = None,
) -> PushResult:
    """Send ``data`` block by block until the device answers 2.04 (or a 2.xx) to the last block."""
    szx = szx_for(block_size)
    offset = 0
    sent = 0
    step_downs = 0
    total = len(data)
    limit = max_requests if max_requests is not None else 4 * (total // 16 + 2)
    while True:
        size = 1 << (szx + 4)
        if offset % size:  # only after a step-down to a size that does not divide the offset: impossible
            raise PushError(f"offset {offset} not aligned to block size {size}", "internal")
        num = offset // size
        chunk = data[offset : offset + size]
        more = offset + size < total
        reply = await send(chunk, num, more, szx, total if offset == 0 else None)
        sent += 1
        if sent > limit:
            raise PushError(f"gave up after {sent} block requests", "loop")
        code = _code(reply.code)
        if code == "4.13":
            szx, step_downs = _step_down_after_413(reply, szx, total, step_downs)
            continue
        if not code.startswith("2."):
            raise PushError(f"device answered {reply.code} to block {num}", code)
        offset += len(chunk)
        if progress is not None:
            progress(sent, offset, total)
        if not more:
            if code == "2.31":
                raise PushError("device asked to continue after the last block", code)
            return PushResult(sent, szx, step_downs)
        if code != "2.31":
            # RFC 7959: a 2.xx other than Continue before the last block ends the transfer early.
            raise PushError(f"device answered {reply.code} before the last block", code)
        if reply.block1 is not None and reply.block1[2] < szx:
            new = reply.block1[2]
            log.debug("ota.push_step_down", from_szx=szx, to_szx=new, offset=offset)
            szx, step_downs = new, step_downs + 1


def _step_down_after_413(reply: BlockReply, szx: int, total: int, step_downs: int) -> tuple[int, int]:
    size = 1 << (szx + 4)
    if reply.block1 is not None and reply.block1[2] < szx:
        return reply.block1[2], step_downs + 1
    if reply.size1 is not None:
        if reply.size1 < 16:
            raise PushError(f"device accepts only {reply.size1} bytes", "4.13", too_large=True)
        if reply.size1 < size:
            return _szx_at_most(reply.size1), step_downs + 1
        if reply.size1 < total:
            raise PushError(f"package of {total} bytes exceeds the device's {reply.size1}", "4.13", too_large=True)
    if szx > MIN_SZX:
        return szx - 1, step_downs + 1
    raise PushError("device refuses even 16-byte blocks (4.13)", "4.13", too_large=True)
