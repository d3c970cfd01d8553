"""The parts of aiocoap below its public API that the transport layer relies on, checked on the installed version.

Each is used in one place, named beside it. An aiocoap upgrade that changes one fails here, by name, instead of
degrading silently (a per-peer message id not drawn any more, a fast path that never sees a datagram).
pyproject.toml pins aiocoap below 0.5 for the same reason."""

from __future__ import annotations

import inspect

import aiocoap.meta
from aiocoap import Context
from aiocoap.messagemanager import MessageManager
from aiocoap.tokenmanager import TokenManager
from aiocoap.transports.udp6 import MessageInterfaceUDP6, UDP6EndpointAddress

from lwm2m_server.coap import messages


def params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def source(func: object) -> str:
    return inspect.getsource(func)  # type: ignore[arg-type]


def test_message_ids_are_drawn_through_the_overridden_method() -> None:
    """coap/messages.py PeerMessageManager: aiocoap draws a message's id in send_message (which it overrides to
    know the peer) by calling _next_message_id (which it overrides to count per peer)."""
    assert params(MessageManager.send_message) == ["self", "message", "messageerror_monitor"]
    assert params(MessageManager._next_message_id) == ["self"]
    body = source(MessageManager.send_message)
    assert "message.mid = self._next_message_id()" in body


def test_the_message_manager_steps_the_nstart_turns_follow() -> None:
    """coap/messages.py PeerMessageManager (NSTART shared with the fast client): it holds a CON response's turn
    from its first sending until aiocoap forgets the exchange (removed, retransmitted to the end, an error)."""
    assert params(MessageManager._send_initially) == ["self", "message", "messageerror_monitor"]
    assert params(MessageManager._remove_exchange) == ["self", "message"]
    assert params(MessageManager._retransmit) == ["self", "message", "timeout", "retransmission_counter"]
    assert params(MessageManager.dispatch_error) == ["self", "error", "remote"]
    assert "self._send_initially(" in source(MessageManager.send_message)


def test_the_udp6_error_queue_hook() -> None:
    """coap/fastpath.py FastPathUDP6.datagram_errqueue_received: an ICMP error for an address."""
    assert params(MessageInterfaceUDP6.datagram_errqueue_received) == ["self", "data", "ancdata", "flags", "address"]


def test_add_transport_mirrors_the_context_wiring() -> None:
    """coap/messages.py add_transport: the steps of Context._append_tokenmanaged_messagemanaged_transport."""
    body = source(Context._append_tokenmanaged_messagemanaged_transport)
    for step in ("TokenManager(self)", "MessageManager(tman)", "mman.message_interface = transport",
                 "tman.token_interface = mman", "self.request_interfaces.append(tman)"):  # fmt: skip
        assert step in body, step
    assert "def next_token" in source(TokenManager)  # the fast client's tokens (coap/fastpath.py create)


def test_backlog_and_exchanges_of_the_message_manager() -> None:
    """coap/exchange.py (abandoning an exchange): the manager's exchange and backlog tables and how it moves on."""
    init = source(MessageManager.__init__)
    assert "self._active_exchanges:" in init and "self._backlogs:" in init
    assert params(MessageManager._continue_backlog) == ["self", "remote"]


def test_udp6_message_interface_hooks() -> None:
    """coap/fastpath.py FastPathUDP6 and coap/udp.py: the interface's constructor, its receive hook, readiness,
    port and the transport factory it mirrors; coap/remotes.py: the address's cached helper."""
    assert params(MessageInterfaceUDP6.__init__) == ["self", "ctx", "log", "loop"]
    assert params(MessageInterfaceUDP6.datagram_msg_received) == ["self", "data", "ancdata", "flags", "address"]
    assert "self.ready" in source(MessageInterfaceUDP6.__init__)
    assert params(MessageInterfaceUDP6._local_port) == ["self"]
    factory = source(MessageInterfaceUDP6._create_transport_endpoint)
    assert "IPV6_RECVPKTINFO" in factory and "RECVERR" in factory  # the socket options create() sets itself
    assert params(UDP6EndpointAddress.__init__)[:3] == ["self", "sockaddr", "interface"]
    assert params(UDP6EndpointAddress._plainaddress) == ["self"]


def test_the_pinned_series() -> None:
    major, minor = (int(x) for x in aiocoap.meta.version.split(".")[:2])
    assert (major, minor) == (0, 4), aiocoap.meta.version
    assert messages.PeerMessageManager.__mro__[1] is MessageManager
