"""Inbound Observe notifications on the fast path: the server's plain observations matched by (peer, token).

A plain observation of a plain-CoAP device is the fast path's alone (``owned``): the fast client sends the
observe request and every later datagram on its token is taken here, so aiocoap holds nothing for it (it held
two tasks and ~13 KB an observation). Without the fast client (``coap_fast_push = false``) aiocoap carries the
request and its first answer and the observation is only watched here. Either way, every later 2.xx
notification with an Observe option from that peer on that token is taken from the datagram before aiocoap sees
it: a CON is acknowledged with an empty ACK (same message id), a duplicate (same peer and message id within
EXCHANGE_LIFETIME) is acknowledged again and not delivered twice, one older than the last (RFC 7641 §3.4,
:func:`lwm2m_server.protocol.observe.is_fresher`) is dropped, and the rest is handed, decoded, to the
observation's handler. On an owned observation an error code, a 2.xx without Observe (the device ended it) and
a notification in blocks (the handler asks for the rest) are delivered too; on a watched one they go on to
aiocoap (which ends the observation, or completes the blocks and calls the same handler).
Once the observation ends it is unwatched, so its next notification reaches aiocoap, which answers RST.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lwm2m_server.coap.exchange import RawResponse
from lwm2m_server.coap.fast_exchange import raw_response
from lwm2m_server.coap.fastpath import Dedup, Send, dedup_key, plain_host
from lwm2m_server.protocol import coapmsg as m
from lwm2m_server.protocol.observe import is_fresher

Address = tuple[Any, ...]
WatchKey = tuple[str, int, bytes]  # (plain host, port, token)
OnNotify = Callable[[RawResponse], None]
OnError = Callable[[OSError], None]


class _Watch:
    __slots__ = ("at", "observe", "on_error", "on_notify", "owned")

    def __init__(self, on_notify: OnNotify, observe: int, at: float, owned: bool,
                 on_error: OnError | None) -> None:  # fmt: skip
        self.on_notify, self.observe, self.at, self.owned, self.on_error = on_notify, observe, at, owned, on_error


class FastNotifications:
    def __init__(self, lifetime: float = m.EXCHANGE_LIFETIME, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._watches: dict[WatchKey, _Watch] = {}
        self.dedup = Dedup(lifetime, clock)  # the fast path's (peer, MID) memory
        self.delivered = 0
        self.duplicates = 0
        self.stale = 0

    def watch(self, host: str, port: int, token: bytes, observe: int, on_notify: OnNotify, *,
              owned: bool = False, on_error: OnError | None = None) -> WatchKey:  # fmt: skip
        """Take the notifications of this observation from now on; ``observe``: the first answer's number.

        ``owned``: the observation is the fast path's alone (the fast client sent its request; aiocoap does not
        know the token), so everything on it is delivered here: an error code or a 2.xx without Observe (the
        device ended it) and a notification in blocks (the handler fetches the rest) too; ``on_error``: an ICMP
        error for the peer (:meth:`unreachable`)."""
        key = (host, port, token)
        self._watches[key] = _Watch(on_notify, observe, self._clock(), owned, on_error)
        return key

    def unreachable(self, address: Address, error: OSError) -> None:
        """An ICMP error for ``address`` (the socket's error queue): its owned observations end with ``error``, as
        aiocoap ends its exchanges with that address (aiocoap does not know these)."""
        host, port = plain_host(address)
        for (h, p, _token), watch in list(self._watches.items()):
            if h == host and p == port and watch.on_error is not None:
                watch.on_error(error)

    def unwatch(self, key: WatchKey) -> None:
        self._watches.pop(key, None)

    def __len__(self) -> int:
        return len(self._watches)

    def offer(self, data: bytes, address: Address, ancdata: list[tuple[int, int, bytes]], send: Send) -> bool:
        """True when the datagram was a notification of a watched observation (answered here)."""
        if not self._watches or len(data) < 4 or data[0] >> 6 != 1 or data[0] & 0x20 or data[1] < 64:
            return False  # CON/NON responses only
        head = m.peek(data)
        if head is None:
            return False
        host, port = plain_host(address)
        watch = self._watches.get((host, port, head[3]))
        if watch is None:
            return False  # not a watched token (aiocoap's observations, responses): not decoded here
        if data[1] >> 5 != 2 and not watch.owned:
            return False  # an error ends aiocoap's observation: its to handle
        try:
            msg = m.decode(data)
        except m.CoapFormatError:
            return False
        observe = msg.option_values(m.OBSERVE)
        if not watch.owned and (not observe or msg.option_values(m.BLOCK2)):
            return False  # a response, not a notification; or one in blocks: aiocoap fetches the rest
        ack = m.empty_ack(msg.mid) if msg.mtype == m.CON else b""
        key = dedup_key(address, msg.mid)
        if self.dedup.get(key) is not None:
            self.duplicates += 1
            if ack:
                send(ack, address, ancdata)
            return True
        self.dedup.begin(key)  # remembered for EXCHANGE_LIFETIME (its ACK is rebuilt for a duplicate)
        if ack:
            send(ack, address, ancdata)
        if observe:  # (an owned observation's final answer, an error or without Observe, is always news)
            number, now = int.from_bytes(observe[0], "big"), self._clock()
            if not is_fresher(watch.observe, watch.at, number, now):
                self.stale += 1
                return True
            watch.observe, watch.at = number, now
        self.delivered += 1
        watch.on_notify(raw_response(msg))
        return True
