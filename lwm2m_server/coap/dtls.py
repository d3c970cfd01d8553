"""The ``coaps`` listener: CoAP over DTLS 1.2 PSK (TLS_PSK_WITH_AES_128_CCM_8) on aiocoap's tinydtls server
transport (PyPI ``DTLSSocket``), added to the server's aiocoap context beside the plain udp6 transport.

What this adds to aiocoap's ``tinydtls_server`` (experimental upstream):

* an exclusive socket like :mod:`lwm2m_server.coap.udp` (upstream binds with SO_REUSEPORT, refuses ``::`` and
  binds *port + 1*, so ``0`` would become port 1);
* server→device requests: a remote of an established session is recognised, so requests, observations and
  Block1 pushes to a DTLS-registered device go out over its own session (:class:`SecureSessions`);
* bounded handshake state: a datagram from an unknown address creates state only if it is a DTLS ClientHello;
  at most ``max_handshakes`` unfinished handshakes exist at a time and each ages out after ``handshake_timeout_s``;
  established sessions are capped at ``max_sessions`` (least recently used one closed first);
* counters for ``/metrics``: handshakes done, failed (records tinydtls refused mid-handshake: unknown identity,
  garbled; a fatal alert), dropped (cap), expired (never finished: e.g. a wrong key, whose Finished tinydtls
  silently discards), and datagrams refused before any state.

Raw public keys (TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8) are not offered: DTLSSocket's wrapper only registers
tinydtls' ``get_psk_info`` callback (no ``get_ecdsa_key``/``verify_ecdsa_key``), so the server cannot present or
check an ECDSA key through it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiocoap import Context, interfaces
from aiocoap.transports import simplesocketserver
from aiocoap.transports.tinydtls import DTLS_EVENT_CONNECTED, LEVEL_NOALERT
from aiocoap.transports.tinydtls_server import (
    GoingThroughMessageDecryption,
    MessageInterfaceTinyDTLSServer,
    _AddressDTLS,
    _DatagramServerSocketSimpleDTLS,
)

from lwm2m_server.coap.messages import add_transport
from lwm2m_server.coap.udp import exclusive_socket
from lwm2m_server.logging import get_logger

log = get_logger(__name__)

PskLookup = Callable[[bytes], bytes | None]
"""PSK identity → key, or None for an unknown identity. Called synchronously inside the handshake."""

_HANDSHAKE, _CLIENT_HELLO = 22, 1


def is_client_hello(datagram: bytes) -> bool:
    """A DTLS record (content type handshake, a DTLS version) carrying a ClientHello (epoch 0)."""
    return (
        len(datagram) >= 25
        and datagram[0] == _HANDSHAKE
        and datagram[1] == 0xFE
        and datagram[2] in (0xFD, 0xFF)
        and datagram[3:5] == b"\x00\x00"
        and datagram[13] == _CLIENT_HELLO
    )


@dataclass(frozen=True)
class DtlsLimits:
    max_handshakes: int = 256
    handshake_timeout_s: float = 10.0
    max_sessions: int = 100_000


class DtlsStats:
    """Counters by outcome: ``handshake_ok``, ``handshake_failed``, ``handshake_dropped``, ``handshake_expired``,
    ``refused_datagram`` (no ClientHello from an unknown address), ``session_evicted``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.pending = 0
        self.sessions = 0

    def count(self, key: str) -> None:
        self.counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


class _Credentials:
    """The ``find_dtls_psk`` interface aiocoap's SecurityStore expects; the claims are the PSK identity."""

    def __init__(self, lookup: PskLookup) -> None:
        self._lookup = lookup

    def find_dtls_psk(self, identity: bytes) -> tuple[bytes, str]:
        key = self._lookup(bytes(identity))
        if key is None:
            raise KeyError(identity)
        return key, bytes(identity).decode("utf-8", "replace")


def plain_host(sockaddr: tuple[Any, ...]) -> tuple[str, int]:
    host = str(sockaddr[0])
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return host, int(sockaddr[1])


class SecureAddress(_AddressDTLS):  # type: ignore[misc]
    """One peer's DTLS state (a tinydtls context); the remote of its requests and of ours to it."""

    _protocol: SecureServerSocket

    def __init__(self, protocol: SecureServerSocket, sockaddr: tuple[Any, ...]) -> None:
        super().__init__(protocol, sockaddr)
        self.created = self.last_seen = time.monotonic()
        self.established = False
        self.closed = False

    @property
    def sockaddr(self) -> tuple[Any, ...]:
        return tuple(self._underlying_address.address)

    @property
    def identity(self) -> str | None:
        """The PSK identity this peer completed its handshake with (None before)."""
        return self._psk_store._claims if self.established else None

    def _event(self, level: int, code: int) -> None:
        if (level, code) == (LEVEL_NOALERT, DTLS_EVENT_CONNECTED):
            if not self.established:
                self.established = True
                self._protocol.on_established(self)
            return
        super()._event(level, code)

    def _inject_error(self, e: Exception) -> None:
        if self.closed:
            return
        self._protocol._message_interface._received_exception(self, e)
        self._protocol.forget(self, "handshake_failed" if not self.established else None)

    def close(self) -> None:
        self.closed = True
        self._retransmission_task.cancel()
        self._dtls_socket.resetPeer(self._dtls_session)


class _Decrypting(GoingThroughMessageDecryption):  # type: ignore[misc]
    def _received_datagram(self, address: SecureAddress, data: bytes) -> None:
        address._retransmission_task.cancel()
        try:
            ret = address._dtls_socket.handleMessage(address._dtls_session, data)
        except Exception:  # raised inside a tinydtls callback (e.g. a second identity on one peer state)
            address._protocol.forget(address, "handshake_failed")
            return
        if address.closed:
            return
        if ret < 0 and not address.established:
            # Unknown identity, garbled or truncated handshake: counted. The state is kept (a retransmitted
            # flight can also be refused, and dropping the peer then would strand a good client); it ages out.
            address._protocol.stats.count("handshake_failed")
        address._retransmission_task = asyncio.create_task(
            address._run_retransmissions(), name="DTLS server handshake retransmissions"
        )


class SecureServerSocket(_DatagramServerSocketSimpleDTLS):  # type: ignore[misc]
    _Address = SecureAddress

    def __init__(self, ready: Callable[[Any], None], message_interface: Any, log: Any,
                 *, limits: DtlsLimits, stats: DtlsStats, sessions: SecureSessions) -> None:
        super().__init__(ready, message_interface, log)
        self._pending: OrderedDict[tuple[Any, ...], SecureAddress] = OrderedDict()
        self.limits = limits
        self.stats = stats
        self.sessions = sessions

    def datagram_received(self, data: bytes, sockaddr: tuple[Any, ...]) -> None:
        address: SecureAddress | None = self._connections.get(sockaddr)
        now = time.monotonic()
        if address is None:
            if not is_client_hello(data):
                self.stats.count("refused_datagram")
                return
            self._expire(now)
            if len(self._pending) >= self.limits.max_handshakes:
                self.stats.count("handshake_dropped")
                return
            address = SecureAddress(self, sockaddr)
            self._connections[sockaddr] = address
            self._pending[sockaddr] = address
            self.stats.pending = len(self._pending)
        elif address.established and is_client_hello(data):
            # A new handshake from the address of an established session: the peer restarted (or a NAT gave
            # its port to another device). The old session cannot be resumed by it: start afresh.
            self.forget(address, "session_replaced")
            self.datagram_received(data, sockaddr)
            return
        else:
            self._connections.move_to_end(sockaddr)
        address.last_seen = now
        self._message_interface._received_datagram(address, data)

    def _expire(self, now: float) -> None:
        deadline = now - self.limits.handshake_timeout_s
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.created > deadline:
                break
            self.forget(oldest, "handshake_expired")

    def on_established(self, address: SecureAddress) -> None:
        self._pending.pop(address.sockaddr, None)
        self.stats.pending = len(self._pending)
        self.stats.count("handshake_ok")
        established = len(self._connections) - len(self._pending)
        if established > self.limits.max_sessions:
            for old in list(self._connections.values()):
                if old.established and old is not address:
                    self.forget(old, "session_evicted")
                    break
        self.sessions.add(address)
        self.stats.sessions = len(self.sessions)

    def forget(self, address: SecureAddress, reason: str | None) -> None:
        if address.closed:
            return
        if reason:
            self.stats.count(reason)
        address.close()
        if self._connections.get(address.sockaddr) is address:
            del self._connections[address.sockaddr]
        if self._pending.get(address.sockaddr) is address:
            del self._pending[address.sockaddr]
        self.stats.pending = len(self._pending)
        self.sessions.discard(address)
        self.stats.sessions = len(self.sessions)

    async def shutdown(self) -> None:
        for address in list(self._connections.values()):
            self.forget(address, None)
        self._transport.abort()


class SecureInterface(MessageInterfaceTinyDTLSServer):  # type: ignore[misc]
    """Recognises its own sessions' remotes (upstream does not, so it could not send requests at all) and never
    opens a session itself (a DTLS client must start the handshake)."""

    async def recognize_remote(self, remote: Any) -> bool:
        return isinstance(remote, SecureAddress) and remote._protocol is self._pool and not remote.closed

    async def determine_remote(self, request: Any) -> None:
        return None


class SecureSessions:
    """Established DTLS sessions by the peer's (host, port) as the registry stores it; lets the device client
    address a DTLS-registered device over its own session."""

    def __init__(self) -> None:
        self._by_addr: dict[tuple[str, int], SecureAddress] = {}

    def add(self, address: SecureAddress) -> None:
        self._by_addr[plain_host(address.sockaddr)] = address

    def discard(self, address: SecureAddress) -> None:
        key = plain_host(address.sockaddr)
        if self._by_addr.get(key) is address:
            del self._by_addr[key]

    def get(self, host: str, port: int) -> SecureAddress | None:
        return self._by_addr.get((host, port))

    def __len__(self) -> int:
        return len(self._by_addr)


def peer_identity(remote: Any) -> str | None:
    """The PSK identity of a request that came over an established DTLS session, else None (plain CoAP)."""
    return remote.identity if isinstance(remote, SecureAddress) else None


async def add_secure_transport(
    context: Context,
    host: str,
    port: int,
    lookup: PskLookup,
    *,
    sessions: SecureSessions,
    limits: DtlsLimits | None = None,
    stats: DtlsStats | None = None,
) -> int:
    """Add a coaps listener on ``host:port`` (0 = any free port) to ``context``; returns the bound port."""
    loop = asyncio.get_running_loop()
    sock = exclusive_socket(host, port)
    bound = int(sock.getsockname()[1])
    lim, st = limits or DtlsLimits(), stats or DtlsStats()

    async def construct(mman: interfaces.MessageManager) -> SecureInterface:
        iface = SecureInterface(mman, context.log, loop)
        wrapped = _Decrypting(iface)
        ready: asyncio.Future[SecureServerSocket] = loop.create_future()
        await loop.create_datagram_endpoint(
            lambda: SecureServerSocket(ready.set_result, wrapped, context.log, limits=lim, stats=st,
                                       sessions=sessions),
            sock=sock,
        )
        pool = await ready
        pool._loop = loop
        pool.hostinfo_local = simplesocketserver.hostportjoin(host, bound)
        pool._server_credentials = _Credentials(lookup)
        iface._pool = pool
        return iface

    try:
        await add_transport(context, construct)
    except Exception:
        sock.close()
        raise
    log.info("coaps_listening", host=host, port=bound)
    return bound
