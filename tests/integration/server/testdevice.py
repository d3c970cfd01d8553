"""A tiny scriptable CoAP device for queue-mode and fault tests (the simulator covers real LwM2M behaviour).

It registers from its own aiocoap server context (so server→device requests reach it), records every request
it receives, and answers according to ``mode``: "ok" (2.05 text / 2.04), "error" (``error_code``),
"wrong_format" (GET answered as SenML-JSON whatever was asked), "duplicate" (SenML-JSON naming the path twice)
or "garbage_format" (an unknown content format).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code


@dataclass
class Received:
    method: str
    path: str
    payload: bytes
    query: tuple[str, ...] = ()
    accept: int | None = None


class _Root(resource.Resource, resource.PathCapable):
    def __init__(self, dev: TestDevice) -> None:
        super().__init__()
        self.dev = dev

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        return True

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        dev = self.dev
        path = "/" + "/".join(request.opt.uri_path)
        dev.received.append(Received(str(request.code), path, bytes(request.payload), tuple(request.opt.uri_query),
                                     request.opt.accept))  # fmt: skip
        if dev.mode == "error":
            return aiocoap.Message(code=dev.error_code)
        if request.code == Code.GET:
            if dev.mode == "wrong_format":
                body = b'[{"n":"' + path.encode() + b'","vs":"json!"}]'
                return aiocoap.Message(code=Code.CONTENT, payload=body, content_format=110)
            if dev.mode == "duplicate":
                record = b'{"n":"' + path.encode() + b'","vs":"one"}'
                body = b"[" + record + b"," + record.replace(b"one", b"two") + b"]"
                return aiocoap.Message(code=Code.CONTENT, payload=body, content_format=110)
            if dev.mode == "garbage_format":
                return aiocoap.Message(code=Code.CONTENT, payload=b"\x00\x01", content_format=65000)
            return aiocoap.Message(code=Code.CONTENT, payload=dev.value.encode(), content_format=0)
        if request.code == Code.DELETE:
            return aiocoap.Message(code=Code.DELETED)
        return aiocoap.Message(code=Code.CHANGED)


@dataclass
class TestDevice:
    endpoint: str
    mode: str = "ok"
    error_code: Code = Code.FORBIDDEN
    value: str = "hello"
    received: list[Received] = field(default_factory=list)
    context: aiocoap.Context | None = None
    location: str = ""

    async def start(self) -> None:
        root = _Root(self)  # serves every path itself
        self.context = await aiocoap.Context.create_server_context(root, bind=("127.0.0.1", 0), transports=["udp6"])

    async def register(self, server_port: int, query: str = "lt=60&lwm2m=1.1", links: bytes = b"</1/0>,</3/0>") -> None:
        assert self.context is not None
        msg = aiocoap.Message(code=Code.POST, uri=f"coap://127.0.0.1:{server_port}/rd?ep={self.endpoint}&{query}",
                              payload=links)  # fmt: skip
        resp = await self.context.request(msg).response
        assert resp.code == Code.CREATED, resp
        self.location = "/" + "/".join(resp.opt.location_path)

    async def update(self, server_port: int, query: str = "") -> Code:
        assert self.context is not None
        uri = f"coap://127.0.0.1:{server_port}{self.location}" + (f"?{query}" if query else "")
        resp = await self.context.request(aiocoap.Message(code=Code.POST, uri=uri)).response
        return resp.code

    async def stop(self) -> None:
        if self.context is not None:
            await self.context.shutdown()
            self.context = None

    __test__ = False  # not a pytest class
