"""A minimal Resource Directory (plain aiocoap, no project code) that records what devices send,
plus a client context to act as the LwM2M server towards devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiocoap
import pytest
from aiocoap import Code, Message
from aiocoap.resource import PathCapable, Resource

from simulator.udp import create_context


@dataclass
class Seen:
    code: str
    path: tuple[str, ...]
    query: tuple[str, ...]
    payload: bytes
    content_format: int | None
    port: int


class MiniRD(Resource, PathCapable):
    """Answers Register 2.01 rd/<n>, Update 2.04, De-register 2.02; unknown ids 4.04."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Seen] = []
        self.live: dict[str, str] = {}
        self.counter = 0

    async def render(self, request: Message) -> Message:
        path = tuple(request.opt.uri_path)
        cf = request.opt.content_format
        self.seen.append(
            Seen(
                str(request.code.dotted),
                path,
                tuple(request.opt.uri_query),
                bytes(request.payload),
                int(cf) if cf is not None else None,
                int(request.remote.sockaddr[1]),
            )
        )
        if request.code == Code.POST and path == ("rd",):
            self.counter += 1
            rid = f"r{self.counter}"
            ep = next(q[3:] for q in request.opt.uri_query if q.startswith("ep="))
            self.live[rid] = ep
            return Message(code=Code.CREATED, location_path=("rd", rid))
        if len(path) == 2 and path[0] == "rd":
            if path[1] not in self.live:
                return Message(code=Code.NOT_FOUND)
            if request.code == Code.POST:
                return Message(code=Code.CHANGED)
            if request.code == Code.DELETE:
                del self.live[path[1]]
                return Message(code=Code.DELETED)
        return Message(code=Code.BAD_REQUEST)

    def of(self, code: str, *, path_len: int | None = None) -> list[Seen]:
        return [s for s in self.seen if s.code == code and (path_len is None or len(s.path) == path_len)]


@dataclass
class RDServer:
    rd: MiniRD
    context: aiocoap.Context
    port: int
    uri: str = field(init=False)

    def __post_init__(self) -> None:
        self.uri = f"coap://127.0.0.1:{self.port}"


@pytest.fixture
async def rd_server() -> AsyncIterator[RDServer]:
    rd = MiniRD()
    context = await create_context(rd, "127.0.0.1", 0)  # exclusive port: see simulator/udp.py
    iface = context.request_interfaces[0].token_interface.message_interface
    port = iface.transport.get_extra_info("socket").getsockname()[1]
    try:
        yield RDServer(rd, context, port)
    finally:
        await context.shutdown()
