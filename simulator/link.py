"""Radio behaviour of a device, applied at the datagram level of its aiocoap UDP transport.

Packet loss, added latency and sleeping (queue mode: the radio is off, every datagram is lost) are
injected below CoAP, so retransmissions, deduplication and timeouts behave exactly as on a real link.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, Literal

from aiocoap import Context

Direction = Literal["in", "out"]
DropRule = Callable[[Direction, bytes], bool]


def _udp_interface(context: Context) -> Any:
    """The udp6 message interface under ``context`` (the object that owns the socket)."""
    for token_manager in context.request_interfaces:
        token_interface = getattr(token_manager, "token_interface", None)
        message_interface = getattr(token_interface, "message_interface", None)
        if message_interface is not None and hasattr(message_interface, "datagram_msg_received"):
            return message_interface
    raise RuntimeError("no udp6 transport in this aiocoap context")


class Link:
    """Wraps one context's UDP transport; every knob can change at run time."""

    def __init__(self, context: Context, *, loss_pct: float = 0.0, delay_ms: float = 0.0, seed: int | None = None):
        self.loss_pct = loss_pct
        self.delay_ms = delay_ms
        self.asleep = False
        self.drop: DropRule | None = None
        """A deterministic fault on top of ``loss_pct``: called with each datagram (``in``: received, ``out``:
        about to be sent, encoded) and dropping it when it answers True (a test drops exactly the ones it
        means to)."""
        self.dropped_in = 0
        self.dropped_out = 0
        self._rng = random.Random(seed)
        self._iface = _udp_interface(context)
        self._orig_receive = self._iface.datagram_msg_received
        self._orig_send = self._iface.send
        self._iface.datagram_msg_received = self._receive
        self._iface.send = self._send

    @property
    def port(self) -> int:
        return int(self._iface.transport.get_extra_info("socket").getsockname()[1])

    def _lost(self) -> bool:
        return self.loss_pct > 0 and self._rng.random() * 100.0 < self.loss_pct

    def _receive(self, data: bytes, ancdata: Any, flags: int, address: Any) -> None:
        if self.asleep or self._lost() or (self.drop is not None and self.drop("in", data)):
            self.dropped_in += 1
            return
        self._orig_receive(data, ancdata, flags, address)

    def _send(self, message: Any) -> None:
        if self._closed():
            return  # a timer fired after the socket closed (empty ACK, retransmission): nothing to send on
        if self.asleep or self._lost() or (self.drop is not None and self.drop("out", message.encode())):
            # A sleeping device sends nothing but its own wake-up uplink, which clears ``asleep`` first.
            self.dropped_out += 1
            return
        if self.delay_ms > 0:
            asyncio.get_running_loop().call_later(self.delay_ms / 1000.0, self._send_now, message)
        else:
            self._orig_send(message)

    def _send_now(self, message: Any) -> None:
        if not self._closed():
            self._orig_send(message)

    def _closed(self) -> bool:
        # aiocoap's recvmsg transport drops its protocol on close (and has no is_closing()).
        transport = getattr(self._iface, "transport", None)
        return transport is None or getattr(transport, "_protocol", None) is None
