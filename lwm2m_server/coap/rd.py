"""The LwM2M Registration Interface over aiocoap: ``POST /rd`` (Register), ``POST /rd/<id>`` (Update),
``DELETE /rd/<id>`` (De-register). Codes per DESIGN §4:

* Register → 2.01 + Location-Path ``rd/<id>``; non-CON, missing ``ep``, malformed query or payload → 4.00;
  unsupported ``lwm2m`` → 4.12 (the protocol core's ``RegistrationError.coap_code``).
* Update → 2.04, De-register → 2.02; unknown id → 4.04; other methods → 4.05.
* Security: 4.03 when the DTLS identity and the endpoint don't match (the interface's ``RegistrationGuard``).

The logic is :class:`~lwm2m_server.coap.registration_interface.RegistrationInterface`, shared with the datagram
fast path (:mod:`lwm2m_server.coap.fastpath`), which takes the plain CON requests before aiocoap sees them; these
resources answer the rest (NON, Block1, unusual options).
"""

from __future__ import annotations

import aiocoap
import aiocoap.error
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from lwm2m_server.coap.dtls import peer_identity
from lwm2m_server.coap.exchange import code_str
from lwm2m_server.coap.registration_interface import CodeCounter, RegistrationInterface, Reply
from lwm2m_server.protocol.coapmsg import code_number

__all__ = ["CodeCounter", "RegistrationInterface", "add_rd_resources", "error_reply", "peer_address"]

_CODES = {
    "4.00": Code.BAD_REQUEST,
    "4.03": Code.FORBIDDEN,
    "4.04": Code.NOT_FOUND,
    "4.12": Code.PRECONDITION_FAILED,
    "4.13": Code.REQUEST_ENTITY_TOO_LARGE,
    "4.15": Code.UNSUPPORTED_CONTENT_FORMAT,
}


def error_reply(code: str, message: str) -> aiocoap.Message:
    return aiocoap.Message(code=_CODES.get(code, Code.BAD_REQUEST), payload=message[:120].encode("utf-8", "replace"))


def peer_address(request: aiocoap.Message) -> tuple[str, int]:
    """The source address of the request, as (plain host, port); v4-mapped IPv6 is shown as IPv4."""
    remote = request.remote
    sockaddr = getattr(remote, "sockaddr", None)
    if sockaddr is not None:
        host = str(sockaddr[0])
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]
        return host, int(sockaddr[1])
    from aiocoap.util import hostportsplit  # other transports (tests with simple6, ...)

    host, port = hostportsplit(remote.hostinfo)
    return host, int(port or 5683)


def to_message(reply: Reply) -> aiocoap.Message:
    msg = aiocoap.Message(code=Code(code_number(reply.code)), payload=reply.payload)
    if reply.location:
        msg.opt.location_path = reply.location
    return msg


def identity_of(request: aiocoap.Message) -> str | None:
    """The PSK identity of the DTLS session ``request`` came over (None: plain CoAP)."""
    return peer_identity(request.remote)


class _CountingResource(resource.Resource):
    """Counts every request it answers by method and response code (errors raised by aiocoap included)."""

    def __init__(self, rd: RegistrationInterface) -> None:
        super().__init__()
        self.rd = rd
        self._count_code = rd.count_code

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        method = str(request.code)
        try:
            response: aiocoap.Message = await super().render(request)
        except aiocoap.error.RenderableError as exc:
            self._count_code(method, code_str(exc.code))
            raise
        self._count_code(method, code_str(response.code))
        return response


class RegisterResource(_CountingResource):
    """``/rd`` itself."""

    def get_link_description(self) -> dict[str, str]:
        return {"rt": "core.rd"}

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        if request.mtype is not Type.CON:
            return to_message(self.rd.reject_non_confirmable())
        host, port = peer_address(request)
        reply = await self.rd.register(request.opt.uri_query, request.payload, host, port, identity_of(request))
        return to_message(reply)


class RegistrationEntryResource(_CountingResource, resource.PathCapable):
    """``/rd/<id>``: Update and De-register (PathCapable: gets the remaining path, i.e. ``(<id>,)``)."""

    def get_link_description(self) -> None:
        return None

    @staticmethod
    def _reg_id(request: aiocoap.Message) -> str | None:
        path = request.opt.uri_path
        return path[0] if len(path) == 1 and path[0] else None

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        host, port = peer_address(request)
        reply = await self.rd.update(self._reg_id(request), request.opt.uri_query, request.payload, host, port,
                                     identity_of(request))
        return to_message(reply)

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        host, port = peer_address(request)
        return to_message(await self.rd.deregister(self._reg_id(request), host, port, identity_of(request)))


def add_rd_resources(site: resource.Site, rd: RegistrationInterface) -> None:
    site.add_resource(("rd",), RegisterResource(rd))
    site.add_resource(("rd",), RegistrationEntryResource(rd))
