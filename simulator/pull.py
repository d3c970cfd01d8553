"""Pull delivery on the simulated device: fetch a Package URI block by block (Block2, path-only URI).

Progress (bytes so far, the ETag, Size2) lives in "flash" (:class:`PullProgress` and the package buffer), so a
download interrupted by a reboot resumes where it stopped; a changed ETag starts over (two packages are never
spliced). What goes wrong is a :class:`PullFailed` with the Update Result the device then reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiocoap import GET, Context, Message
from aiocoap.numbers.constants import TransportTuning
from aiocoap.optiontypes import BlockOption

from lwm2m_server.protocol.fwupdate import UpdateResult
from simulator.udp import response_within

URI_ERRORS = frozenset({"4.00", "4.02", "4.04"})
"""Server answers that mean the URI itself is wrong (result 7); any other error is a lost connection (4)."""


@dataclass
class PullProgress:
    """Persisted download progress: survives reboots so the download can resume (ETag + offset)."""

    uri: str
    etag: bytes | None = None
    total: int | None = None


class PullFailed(Exception):
    def __init__(self, result: UpdateResult, detail: str) -> None:
        super().__init__(detail)
        self.result, self.detail = result, detail


def szx_of(size: int) -> int:
    return size.bit_length() - 5


def block_tuning(ack_timeout: float) -> TransportTuning:
    """CoAP transmission parameters for block requests: ``ack_timeout`` s instead of the RFC 7252 default."""

    class BlockTuning(TransportTuning):
        ACK_TIMEOUT = ack_timeout

    return BlockTuning()


async def fetch_package(
    context_of: Callable[[], Context | None],
    pull: PullProgress,
    package: bytearray,
    *,
    block_size: int,
    flash_free: int,
    request_timeout_s: float,
    tuning: TransportTuning,
    on_block: Callable[[], bool],
) -> bool:
    """Fetch the rest of ``pull.uri`` into ``package`` (in place). True once complete; False when stopped (the
    device has no socket any more, or ``on_block`` after a stored block says the power went). PullFailed for a
    failure the device reports; TimeoutError when a block request goes unanswered."""
    size = block_size
    resolved: tuple[Context, Any] | None = None  # the server's address as the first answer came from
    while True:
        context = context_of()
        if context is None:
            return False
        num = len(package) // size
        del package[num * size :]
        request = Message(code=GET, uri=pull.uri, transport_tuning=tuning)
        if resolved is not None and resolved[0] is context:
            # The URI names the same host for every block: resolve it once per socket, as firmware does
            # (aiocoap otherwise calls getaddrinfo for each request: ~13% of a pulling device's CPU).
            request.remote = resolved[1]
        request.opt.block2 = BlockOption.BlockwiseTuple(num, False, szx_of(size))
        response = await response_within(context.request(request, handle_blockwise=False), request_timeout_s)
        resolved = (context, response.remote)
        if not response.code.is_successful():
            code = response.code.dotted
            bad_uri = code in URI_ERRORS
            raise PullFailed(UpdateResult.INVALID_URI if bad_uri else UpdateResult.CONNECTION_LOST,
                             f"server said {code}")  # fmt: skip
        etag = response.opt.etag
        if pull.etag is not None and etag != pull.etag:
            # The package changed (or this is another one): start over, never splice two packages.
            pull.etag, pull.total = etag, None
            del package[:]
            if num != 0:
                continue
        pull.etag = etag
        if response.opt.size2 is not None:
            pull.total = response.opt.size2
            if pull.total > flash_free:
                raise PullFailed(UpdateResult.NOT_ENOUGH_FLASH, f"Size2 {pull.total}")
        block2 = response.opt.block2
        if block2 is None:
            package[:] = response.payload
            more = False
        else:
            if block2.start > len(package):
                raise RuntimeError(f"server skipped to offset {block2.start}")
            size = min(size, block2.size)
            del package[block2.start :]
            package += response.payload
            more = block2.more
        if len(package) > flash_free:
            raise PullFailed(UpdateResult.NOT_ENOUGH_FLASH, "download beyond flash")
        if on_block():
            return False
        if not more:
            return True
