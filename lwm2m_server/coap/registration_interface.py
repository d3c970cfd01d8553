"""The LwM2M Registration Interface, independent of the CoAP stack that carried the request.

Both the aiocoap resources (:mod:`lwm2m_server.coap.rd`) and the datagram fast path
(:mod:`lwm2m_server.coap.fastpath`) call these methods with the decoded Uri-Query and payload and turn the
:class:`Reply` into their own response, so a Register answers the same bytes whichever path took it. Codes per
DESIGN §4: Register → 2.01 + Location-Path ``rd/<id>``; Update → 2.04; De-register → 2.02; unknown id → 4.04;
malformed → 4.00; unsupported ``lwm2m`` → 4.12 (the protocol core's ``RegistrationError.coap_code``).

Security (a :class:`RegistrationGuard`): over DTLS the endpoint must be the one bound to the peer's PSK identity,
and an endpoint holding a credential must use DTLS; otherwise 4.03 and nothing is registered, updated or removed.
The registration records how it came: ``security`` ``psk`` (a PSK ``identity`` was given) or ``none``.

The reply is ready once the registration is in memory and its write is queued (see :mod:`lwm2m_server.store.base`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from lwm2m_server.logging import get_logger
from lwm2m_server.protocol.registration import RegistrationError, parse_register, parse_update
from lwm2m_server.registry import Registry

log = get_logger(__name__)

CodeCounter = Callable[[str, str], None]  # (method, answered code)
MAX_ERROR_TEXT = 120


class Reply(NamedTuple):
    code: str  # "2.01", "4.04", ...
    location: tuple[str, ...] = ()  # Location-Path segments
    payload: bytes = b""


def error(code: str, message: str) -> Reply:
    return Reply(code, (), message[:MAX_ERROR_TEXT].encode("utf-8", "replace"))


CHANGED = Reply("2.04")
DELETED = Reply("2.02")
UNKNOWN = error("4.04", "unknown registration")


class RegistrationGuard(Protocol):
    async def check_registration(self, endpoint: str, identity: str | None, peer: str) -> str | None:
        """None to accept; else the reason ``endpoint`` may not (de/re)register with this DTLS identity."""
        ...


def security_mode(identity: str | None) -> str:
    return "psk" if identity is not None else "none"


class RegistrationInterface:
    """``counter(outcome)`` per request (registered, updated, ...); ``codes(method, code)`` per answer;
    ``guard`` decides who may register as which endpoint (None: anyone, for plain-CoAP-only setups)."""

    def __init__(
        self,
        registry: Registry,
        counter: Callable[[str], None] | None = None,
        codes: CodeCounter | None = None,
        guard: RegistrationGuard | None = None,
    ) -> None:
        self.registry = registry
        self.count = counter or (lambda _k: None)
        self.count_code = codes or (lambda _m, _c: None)
        self.guard = guard

    async def _refusal(self, endpoint: str, identity: str | None, host: str, port: int) -> Reply | None:
        if self.guard is None:
            return None
        reason = await self.guard.check_registration(endpoint, identity, f"{host}:{port}")
        if reason is None:
            return None
        self.count("refused")
        return error("4.03", reason)

    async def register(
        self, query: Sequence[str], payload: bytes, host: str, port: int, identity: str | None = None
    ) -> Reply:
        try:
            req = parse_register(query, payload)
        except RegistrationError as exc:
            self.count("rejected")
            log.info("register_rejected", code=exc.coap_code, error=str(exc), peer=f"{host}:{port}")
            return error(exc.coap_code, str(exc))
        refused = await self._refusal(req.endpoint, identity, host, port)
        if refused is not None:
            return refused
        reg = await self.registry.register(req, host, port, security=security_mode(identity))
        self.count("registered")  # no log line here: the "registered" event carries it (and costs no bind)
        return Reply("2.01", ("rd", reg.reg_id))

    async def update(
        self, reg_id: str | None, query: Sequence[str], payload: bytes, host: str, port: int,
        identity: str | None = None,
    ) -> Reply:
        current = self.registry.by_id(reg_id) if reg_id is not None else None
        if reg_id is None or current is None:
            self.count("unknown")
            return UNKNOWN
        try:
            upd = parse_update(query, payload)
        except RegistrationError as exc:
            self.count("rejected")
            return error(exc.coap_code, str(exc))
        refused = await self._refusal(current.endpoint, identity, host, port)
        if refused is not None:
            return refused
        reg = await self.registry.update(reg_id, upd, host, port, security=security_mode(identity))
        if reg is None:
            return UNKNOWN
        self.count("updated")
        return CHANGED

    async def deregister(
        self, reg_id: str | None, host: str = "", port: int = 0, identity: str | None = None
    ) -> Reply:
        current = self.registry.by_id(reg_id) if reg_id is not None else None
        if current is not None:
            refused = await self._refusal(current.endpoint, identity, host, port)
            if refused is not None:
                return refused
        reg = await self.registry.deregister(reg_id) if reg_id is not None else None
        if reg is None:
            self.count("unknown")
            return UNKNOWN
        self.count("deregistered")
        return DELETED

    def reject_non_confirmable(self) -> Reply:
        self.count("rejected")
        return error("4.00", "Register must be a confirmable request")
