"""The socket's hand-off: the fast client and the fast notifications decide from the header and token
(coapmsg.peek) whether a datagram is theirs, and decode fully only those. A datagram that is theirs by its
header but malformed further on still goes on to aiocoap (offer returns False, nothing is answered or
resolved), as before the peek; a well-formed one after it is taken."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from lwm2m_server.coap.exchange import RawResponse
from lwm2m_server.coap.fast_client import FastClient
from lwm2m_server.coap.fast_notifications import FastNotifications
from lwm2m_server.protocol import coapmsg as m

ADDR = ("::ffff:127.0.0.1", 5700, 0, 0)
PATH = ((m.URI_PATH, b"5"), (m.URI_PATH, b"0"), (m.URI_PATH, b"0"))
BAD_TAIL = b"\xbd"  # an option header whose extended delta byte is missing


async def test_client_leaves_a_malformed_answer_to_aiocoap() -> None:
    sent: list[bytes] = []
    client = FastClient()
    mids, tokens = itertools.count(0x2000), (bytes((0xC0 + i,)) for i in itertools.count())
    client.connect(lambda data, address: sent.append(data), lambda remote: next(mids), lambda: next(tokens),
                   asyncio.get_running_loop())  # fmt: skip
    pending = asyncio.ensure_future(client.request(ADDR, m.PUT, PATH, b"x"))
    await asyncio.sleep(0)
    req = m.decode(sent[0])
    answer = m.encode(m.ACK, 0x44, req.mid, req.token)
    assert m.peek(answer + BAD_TAIL) == (m.ACK, 0x44, req.mid, req.token)
    assert client.offer(answer + BAD_TAIL, ADDR) is False  # ours by its header, but aiocoap's to refuse
    assert client.offer(m.encode(m.ACK, 0x45, 0x0999, req.token), ADDR) is False  # another mid: aiocoap's
    assert client.offer(m.encode(m.CON, 0x45, 0x0998, b"\xee"), ADDR) is False  # another token: aiocoap's
    await asyncio.sleep(0)
    assert not pending.done()
    assert client.offer(answer, ADDR) is True
    assert (await pending).code == 0x44
    assert client.offer(answer + BAD_TAIL, ADDR) is False  # a duplicate, but malformed: still aiocoap's
    assert client.offer(answer, ADDR) is True  # a duplicate ACK: swallowed
    client.disconnect()


def test_notifications_leave_a_malformed_notification_to_aiocoap() -> None:
    got: list[RawResponse] = []
    sent: list[bytes] = []
    notes = FastNotifications()
    notes.watch("127.0.0.1", 5700, b"\x0a\x0b", 1, got.append)

    def send(data: bytes, address: Any, ancdata: Any) -> None:
        sent.append(data)

    good = m.encode(m.CON, 0x45, 0x0301, b"\x0a\x0b", ((m.OBSERVE, b"\x02"), (m.CONTENT_FORMAT, b"")), b"7")
    bad = m.encode(m.CON, 0x45, 0x0301, b"\x0a\x0b") + BAD_TAIL
    assert notes.offer(bad, ADDR, [], send) is False and sent == [] and got == []
    no_observe = m.encode(m.CON, 0x45, 0x0302, b"\x0a\x0b", ((m.CONTENT_FORMAT, b""),), b"7")
    assert notes.offer(no_observe, ADDR, [], send) is False and sent == []  # a response, not a notification
    assert notes.offer(m.encode(m.CON, 0x45, 0x0303, b"\x0c", ((m.OBSERVE, b"\x02"),)), ADDR, [], send) is False
    assert notes.offer(good, ADDR, [], send) is True
    assert sent == [bytes((0x60, 0, 0x03, 0x01))] and [r.payload for r in got] == [b"7"]
    assert notes.delivered == 1 and notes.duplicates == 0
