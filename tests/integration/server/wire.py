"""Hand-built CoAP datagrams (RFC 7252 §3) for raw-UDP tests: independent of aiocoap on purpose."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT, DELETE = 1, 2, 3, 4
URI_PATH, CONTENT_FORMAT, URI_QUERY, LOCATION_PATH = 11, 12, 15, 8


def _ext(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    return 14, (value - 269).to_bytes(2, "big")


def build(mtype: int, code: int, mid: int, token: bytes = b"", options: list[tuple[int, bytes]] | None = None,
          payload: bytes = b"") -> bytes:  # fmt: skip
    out = bytearray([0x40 | (mtype << 4) | len(token), code, mid >> 8 & 0xFF, mid & 0xFF])
    out += token
    last = 0
    for number, value in sorted(options or [], key=lambda o: o[0]):
        d, dx = _ext(number - last)
        length, lx = _ext(len(value))
        out.append(d << 4 | length)
        out += dx + lx + value
        last = number
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def register(mid: int, token: bytes, query: list[str], payload: bytes, mtype: int = CON) -> bytes:
    opts = [(URI_PATH, b"rd")] + [(URI_QUERY, q.encode()) for q in query]
    return build(mtype, POST, mid, token, opts, payload)


@dataclass
class Parsed:
    mtype: int
    code: int
    mid: int
    token: bytes
    options: list[tuple[int, bytes]]
    payload: bytes

    @property
    def code_str(self) -> str:
        return f"{self.code >> 5}.{self.code & 31:02d}"

    def option(self, number: int) -> list[bytes]:
        return [v for n, v in self.options if n == number]


def parse(data: bytes) -> Parsed:
    if len(data) < 4 or data[0] >> 6 != 1:
        raise ValueError("not CoAP")
    tkl = data[0] & 0x0F
    mtype, code, mid = (data[0] >> 4) & 3, data[1], int.from_bytes(data[2:4], "big")
    pos, number, opts = 4 + tkl, 0, []
    token = data[4:pos]
    while pos < len(data) and data[pos] != 0xFF:
        d, length = data[pos] >> 4, data[pos] & 0x0F
        pos += 1
        for which in ("d", "l"):
            v = d if which == "d" else length
            if v == 13:
                v, pos = data[pos] + 13, pos + 1
            elif v == 14:
                v, pos = int.from_bytes(data[pos : pos + 2], "big") + 269, pos + 2
            if which == "d":
                d = v
            else:
                length = v
        number += d
        opts.append((number, data[pos : pos + length]))
        pos += length
    payload = data[pos + 1 :] if pos < len(data) else b""
    return Parsed(mtype, code, mid, token, opts, payload)


class UdpPeer(asyncio.DatagramProtocol):
    """A raw UDP endpoint on 127.0.0.1. Responses (and anything unparsable) land in ``inbox``; requests from the
    server land in ``requests`` and, if ``answer_requests``, get a piggybacked ACK 4.04 (a device with nothing)."""

    answer_requests = True

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.requests: list[Parsed] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            msg = parse(data)
        except (ValueError, IndexError):
            msg = None
        if msg is not None and 1 <= msg.code < 32:
            self.requests.append(msg)
            if self.answer_requests and msg.mtype == CON and self.transport is not None:
                self.transport.sendto(build(ACK, 0x84, msg.mid, msg.token))
            return
        self.inbox.put_nowait(data)

    @classmethod
    async def open(cls, server_port: int, *, answer_requests: bool = True) -> UdpPeer:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(cls, remote_addr=("127.0.0.1", server_port))
        proto.transport = transport
        proto.answer_requests = answer_requests
        return proto

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data)

    async def recv(self, timeout: float = 2.0) -> Parsed:
        return parse(await asyncio.wait_for(self.inbox.get(), timeout))

    async def nothing(self, wait: float = 0.3) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.inbox.get(), wait)
            return False
        return True

    async def drain(self, quiet: float = 0.2) -> list[bytes]:
        """Everything that arrives until ``quiet`` s pass without a datagram."""
        got = []
        while True:
            try:
                got.append(await asyncio.wait_for(self.inbox.get(), quiet))
            except TimeoutError:
                return got

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
