"""The LwM2M Registration Interface over aiocoap: ``POST /rd`` (Register), ``POST /rd/<id>`` (Update),
``DELETE /rd/<id>`` (De-register). Codes per DESIGN §4:

* Register → 2.01 + Location-Path ``rd/<id>``; non-CON, missing ``ep``, malformed query or payload → 4.00;
  unsupported ``lwm2m`` → 4.12 (the protocol core's ``RegistrationError.coap_code``).
* Update → 2.04, De-register → 2.02; unknown id → 4.04; other methods → 4.05.
* Security (a :class:`RegistrationGuard`): over DTLS the endpoint must be the one bound to the peer's PSK
  identity, and an endpoint holding a credential must use DTLS; otherwise 4.03 and no registration is made.
  The registration records how it came: ``security`` ``psk`` or ``none``.

The reply is sent once the registration is in memory and its write is queued (see :mod:`lwm2m_server.store.base`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import aiocoap
import aiocoap.error
import aiocoap.resource as resource
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from lwm2m_server.coap.dtls import peer_identity
from lwm2m_server.coap.exchange import code_str
from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.registration import RegistrationError, parse_register, parse_update
from lwm2m_server.registry import Registry

log = get_logger(__name__)

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


CodeCounter = Callable[[str, str], None]  # (method, answered code)


class RegistrationGuard(Protocol):
    async def check_registration(self, endpoint: str, identity: str | None, peer: str) -> str | None:
        """None to accept; else the reason ``endpoint`` may not (de/re)register with this DTLS identity."""
        ...


class _OpenGuard:
    async def check_registration(self, endpoint: str, identity: str | None, peer: str) -> str | None:
        return None


def security_of(request: aiocoap.Message) -> tuple[str | None, str]:
    """(PSK identity or None, security mode label) of the transport ``request`` came over."""
    identity = peer_identity(request.remote)
    return identity, "psk" if identity is not None else "none"


class _CountingResource(resource.Resource):
    """Counts every request it answers by method and response code (errors raised by aiocoap included)."""

    def __init__(
        self,
        registry: Registry,
        counter: Callable[[str], None] | None = None,
        codes: CodeCounter | None = None,
        guard: RegistrationGuard | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.guard: RegistrationGuard = guard or _OpenGuard()
        self._count = counter or (lambda _k: None)
        self._count_code = codes or (lambda _m, _c: None)

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
            self._count("rejected")
            return error_reply("4.00", "Register must be a confirmable request")
        try:
            req = parse_register(request.opt.uri_query, request.payload)
        except RegistrationError as exc:
            self._count("rejected")
            log.info("register_rejected", code=exc.coap_code, error=str(exc), peer=str(request.remote.hostinfo))
            return error_reply(exc.coap_code, str(exc))
        host, port = peer_address(request)
        identity, security = security_of(request)
        refusal = await self.guard.check_registration(req.endpoint, identity, f"{host}:{port}")
        if refusal is not None:
            self._count("refused")
            return error_reply("4.03", refusal)
        reg = await self.registry.register(req, host, port, security=security)
        self._count("registered")
        log.debug("registered", endpoint=reg.endpoint, reg_id=reg.reg_id, address=f"{host}:{port}")
        return aiocoap.Message(code=Code.CREATED, location_path=("rd", reg.reg_id))


class RegistrationEntryResource(_CountingResource, resource.PathCapable):
    """``/rd/<id>``: Update and De-register (PathCapable: gets the remaining path, i.e. ``(<id>,)``)."""

    def get_link_description(self) -> None:
        return None

    @staticmethod
    def _reg_id(request: aiocoap.Message) -> str | None:
        path = request.opt.uri_path
        return path[0] if len(path) == 1 and path[0] else None

    async def _refusal(self, request: aiocoap.Message, endpoint: str) -> aiocoap.Message | None:
        host, port = peer_address(request)
        identity, _security = security_of(request)
        refusal = await self.guard.check_registration(endpoint, identity, f"{host}:{port}")
        if refusal is None:
            return None
        self._count("refused")
        return error_reply("4.03", refusal)

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        reg_id = self._reg_id(request)
        current = self.registry.by_id(reg_id) if reg_id is not None else None
        if reg_id is None or current is None:
            self._count("unknown")
            return error_reply("4.04", "unknown registration")
        try:
            upd = parse_update(request.opt.uri_query, request.payload)
        except RegistrationError as exc:
            self._count("rejected")
            return error_reply(exc.coap_code, str(exc))
        refused = await self._refusal(request, current.endpoint)
        if refused is not None:
            return refused
        host, port = peer_address(request)
        reg = await self.registry.update(reg_id, upd, host, port, security=security_of(request)[1])
        if reg is None:
            return error_reply("4.04", "unknown registration")
        self._count("updated")
        return aiocoap.Message(code=Code.CHANGED)

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        reg_id = self._reg_id(request)
        current = self.registry.by_id(reg_id) if reg_id is not None else None
        if current is not None:
            refused = await self._refusal(request, current.endpoint)
            if refused is not None:
                return refused
        reg = await self.registry.deregister(reg_id) if reg_id is not None else None
        if reg is None:
            self._count("unknown")
            return error_reply("4.04", "unknown registration")
        self._count("deregistered")
        return aiocoap.Message(code=Code.DELETED)


def add_rd_resources(
    site: resource.Site,
    registry: Registry,
    counter: Callable[[str], None] | None = None,
    codes: CodeCounter | None = None,
    guard: RegistrationGuard | None = None,
) -> None:
    """``counter(outcome)`` per request (registered, updated, ...); ``codes(method, code)`` per answer;
    ``guard`` decides who may register as which endpoint (None: anyone, plain CoAP only setups)."""
    site.add_resource(("rd",), RegisterResource(registry, counter, codes, guard))
    site.add_resource(("rd",), RegistrationEntryResource(registry, counter, codes, guard))
