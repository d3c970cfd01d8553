"""``POST /dp``: the LwM2M 1.1 Send operation on the wire. The device is known by the address it registered
from (a Send names no endpoint); the payload is decoded by the core (:mod:`lwm2m_server.protocol.send`) and
handed to ``on_send``. Answers: 2.04 stored; 4.00 malformed or duplicate values; 4.15 a format other than
SenML; 4.04 from an address with no registration; 4.05 any other method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code

from lwm2m_server.coap.exchange import code_str
from lwm2m_server.coap.rd import CodeCounter, error_reply, peer_address
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.codecs import CodecError
from lwm2m_server.protocol.codecs.senml import TimedValue
from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.protocol.send import SEND_FORMATS, decode_send
from lwm2m_server.registration import Registration
from lwm2m_server.registry import Registry

log = get_logger(__name__)

SendHandler = Callable[[Registration, list[TimedValue]], Awaitable[None]]


class SendResource(resource.Resource):
    def __init__(
        self, registry: Registry, model: ObjectRegistry, on_send: SendHandler, codes: CodeCounter | None = None
    ) -> None:
        super().__init__()
        self.registry = registry
        self.model = model
        self.on_send = on_send
        self._count_code = codes or (lambda _m, _c: None)

    def get_link_description(self) -> None:
        return None

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        response: aiocoap.Message = await super().render(request)
        self._count_code(str(request.code), code_str(response.code))
        return response

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        host, port = peer_address(request)
        reg = self.registry.by_address(host, port)
        if reg is None:
            return error_reply("4.04", "send from an address with no registration")
        cf = request.opt.content_format
        if cf is not None and int(cf) not in SEND_FORMATS:
            return error_reply("4.15", f"send carries SenML-CBOR or SenML-JSON, not {int(cf)}")
        try:
            values = decode_send(None if cf is None else int(cf), request.payload, self.model)
        except CodecError as exc:
            log.info("send_rejected", endpoint=reg.endpoint, error=str(exc))
            return error_reply("4.00", str(exc))
        self.registry.touch(reg.endpoint)
        await self.on_send(reg, values)
        return aiocoap.Message(code=Code.CHANGED)
