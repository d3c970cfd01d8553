#!/usr/bin/env python3
"""The fast path's hand-off cost for datagrams it does not take: what every response to an aiocoap request pays
on the server socket before aiocoap parses it (``FastClient.offer``, ``FastNotifications.offer``,
``FastPath.offer``, in ``FastPathUDP6.datagram_msg_received``'s order), with the fast client holding 200
outstanding requests and 1,000 watched observations. In-process, no sockets: timeit on real datagrams.

Printed per datagram: the hand-off in µs, aiocoap's own ``Message.decode`` of the same bytes (the baseline:
the parse aiocoap does next anyway) and the ratio hand-off / aiocoap decode.

    python bench/handoff.py [--number 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import timeit
from typing import Any

import aiocoap

from lwm2m_server.coap.fast_client import FastClient
from lwm2m_server.coap.fast_notifications import FastNotifications
from lwm2m_server.coap.fastpath import FastPath
from lwm2m_server.protocol import coapmsg as m

SENML = (b'[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"1","vs":"Lightweight M2M Client"},'
         b'{"n":"2","vs":"345000123"},{"n":"9","v":95},{"n":"13","v":1367491215}]')  # fmt: skip
TOKEN = b"\xaa\xbb\xcc\xdd\x01\x02\x03\x04"  # aiocoap's 8-byte tokens
_READ_OPTS = [(m.CONTENT_FORMAT, m.uint_option(110))]
_NOTIFY_OPTS = [(m.OBSERVE, b"\x07"), (m.CONTENT_FORMAT, m.uint_option(110)), (m.BLOCK2, m.block_option(0, True, 6))]
DATAGRAMS = {
    "2.05 ACK to an aiocoap read": m.encode(m.ACK, 0x45, 0x1234, TOKEN, _READ_OPTS, SENML),
    "2.05 CON notification, Block2": m.encode(m.CON, 0x45, 0x2345, TOKEN[:7] + b"\x05", _NOTIFY_OPTS, SENML * 5),
    "empty ACK to an aiocoap CON": m.empty_ack(0x3456),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    client = FastClient()
    mids, tokens = itertools.count(1), (i.to_bytes(4, "big") for i in itertools.count(1))
    client.connect(lambda data, address: None, lambda remote: next(mids), lambda: next(tokens), loop)
    assert client._con is not None
    for i in range(200):  # outstanding fast requests to other devices
        client._con.request((f"::ffff:10.0.{i // 250}.{i % 250}", 5683), m.PUT, (), b"x", 0.0)
    notifications = FastNotifications()
    for i in range(1000):
        notifications.watch("127.0.0.1", 20000 + i, i.to_bytes(4, "big"), 1, lambda response: None)
    fast = FastPath()
    address = ("::ffff:127.0.0.1", 5683, 0, 0)

    def send(data: bytes, address: Any, ancdata: Any) -> None:
        raise AssertionError("a hand-off answers nothing")

    def hand_off(data: bytes) -> bool:
        return (client.offer(data, address) or notifications.offer(data, address, [], send)
                or fast.offer(data, address, [], send))  # fmt: skip

    n = args.number
    for name, data in DATAGRAMS.items():
        assert hand_off(data) is False
        ours = min(timeit.repeat(lambda: hand_off(data), number=n, repeat=5)) / n * 1e6  # noqa: B023
        theirs = min(timeit.repeat(lambda: aiocoap.Message.decode(data), number=n // 4, repeat=5)) / (n // 4) * 1e6  # noqa: B023
        print(f"{name:32s} {len(data):4d} B  hand-off {ours:5.2f} µs  aiocoap decode {theirs:5.2f} µs  "
              f"ratio {ours / theirs:.2f}")  # fmt: skip
    loop.close()


if __name__ == "__main__":
    main()
