"""The sans-IO CON client, byte for byte, on a fake clock: retransmission schedule, ACK/RST/timeout, NSTART,
separate responses, duplicate ACKs, and a whole Block1 push (2.31, 4.13 renegotiation, 4.08)."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.ota.push import BlockReply, PushError, push_package
from lwm2m_server.protocol import coapmsg as m
from lwm2m_server.protocol.conclient import ConClient

DEV = ("::ffff:127.0.0.1", 5700)
OTHER = ("::ffff:127.0.0.1", 5701)
PATH = ((m.URI_PATH, b"5"), (m.URI_PATH, b"0"), (m.URI_PATH, b"0"))


def make(mids: list[int] | None = None, rand: float = 0.5) -> ConClient:
    mid_iter = iter(mids) if mids is not None else itertools.count(0x1234)
    tokens = (bytes((0xA0 + i,)) for i in itertools.count())
    return ConClient(lambda remote: next(mid_iter), lambda: next(tokens), rand=lambda: rand)


def ack(mid: int, code: int, token: bytes, options: tuple[tuple[int, bytes], ...] = (), payload: bytes = b""
        ) -> m.CoapMessage:  # fmt: skip
    return m.decode(m.encode(m.ACK, code, mid, token, options, payload))


def test_first_block_request_bytes() -> None:
    con = make()
    opts = (*PATH, (m.CONTENT_FORMAT, m.uint_option(42)), (m.BLOCK1, m.block_option(0, True, 6)),
            (m.SIZE1, m.uint_option(54300)))  # fmt: skip
    con.request(DEV, m.PUT, opts, b"\x01\x02", now=0.0)
    expected = bytes([
        0x41, 0x03, 0x12, 0x34, 0xA0,  # CON PUT mid 0x1234, token A0
        0xB1, 0x35, 0x01, 0x30, 0x01, 0x30,  # Uri-Path 5 / 0 / 0
        0x11, 0x2A,  # Content-Format 42
        0xD1, 0x02, 0x0E,  # Block1 (27): num 0, M, SZX 6
        0xD2, 0x14, 0xD4, 0x1C,  # Size1 (60): 54300
        0xFF, 0x01, 0x02,
    ])  # fmt: skip
    assert con.take_outgoing() == [(DEV, expected)]
    assert con.next_deadline() == pytest.approx(2.5)  # ACK_TIMEOUT 2 s x (1 + 0.5 x 0.5)


def test_retransmit_schedule_then_timeout() -> None:
    con = make()
    handle = con.request(DEV, m.PUT, PATH, b"x", now=0.0)
    (first,) = con.take_outgoing()
    sent_at = []
    now = 0.0
    while (deadline := con.next_deadline()) is not None:
        now = deadline
        con.tick(now)
        out = con.take_outgoing()
        if out:
            assert out == [first]  # the same datagram, same message id
            sent_at.append(now)
    assert sent_at == pytest.approx([2.5, 7.5, 17.5, 37.5])  # MAX_RETRANSMIT 4, timeout doubling
    assert now == pytest.approx(77.5)
    assert con.take_completions() == [(handle, None, "timeout")]
    assert con.retransmissions == 4 and len(con) == 0


def test_random_factor_bounds_initial_timeout() -> None:
    for r, expected in ((0.0, 2.0), (0.999, 2.999)):
        con = make(rand=r)
        con.request(DEV, m.GET, PATH, b"", now=10.0)
        assert con.next_deadline() == pytest.approx(10.0 + expected)


def test_piggybacked_ack_completes_and_duplicate_ack_is_swallowed() -> None:
    con = make()
    handle = con.request(DEV, m.PUT, PATH, b"x", now=0.0)
    con.take_outgoing()
    reply = ack(0x1234, 0x5F, b"\xa0", ((m.BLOCK1, m.block_option(0, True, 6)),))  # 2.31 Continue
    assert con.receive(DEV, reply, now=0.1)
    (done,) = con.take_completions()
    assert done.handle == handle and done.response == reply and done.error is None
    assert con.receive(DEV, reply, now=0.2)  # the duplicate is ours, and nothing happens
    assert con.take_completions() == [] and con.take_outgoing() == []
    assert con.next_deadline() is None
    assert not con.receive(DEV, ack(0x9999, 0x44, b"\xa0"), now=0.3)  # not one of ours: aiocoap's


def test_piggybacked_ack_with_a_wrong_token_is_not_a_response() -> None:
    con = make()
    con.request(DEV, m.PUT, PATH, b"x", now=0.0)
    con.take_outgoing()
    assert con.receive(DEV, ack(0x1234, 0x44, b"\xff"), now=0.1)
    assert con.take_completions() == []
    assert con.next_deadline() == pytest.approx(2.5)  # still retransmitting


def test_reset_fails_the_request() -> None:
    con = make()
    handle = con.request(DEV, m.PUT, PATH, b"x", now=0.0)
    con.take_outgoing()
    assert con.receive(DEV, m.decode(m.reset(0x1234)), now=0.1)
    assert con.take_completions() == [(handle, None, "reset")]


def test_nstart_one_per_remote() -> None:
    con = make()
    h1 = con.request(DEV, m.PUT, PATH, b"1", now=0.0)
    h2 = con.request(DEV, m.PUT, PATH, b"2", now=0.0)
    h3 = con.request(OTHER, m.PUT, PATH, b"3", now=0.0)
    out = con.take_outgoing()
    assert [(r, d[2:4]) for r, d in out] == [(DEV, b"\x12\x34"), (OTHER, b"\x12\x36")]  # the 2nd to DEV waits
    con.receive(DEV, ack(0x1234, 0x44, b"\xa0"), now=1.0)
    assert [d[2:5] for _, d in con.take_outgoing()] == [b"\x12\x35\xa1"]  # now its turn, its own mid/token
    assert [c.handle for c in con.take_completions()] == [h1]
    con.cancel(h2, now=1.5)
    assert con.take_completions() == [] and len(con) == 1
    con.receive(OTHER, ack(0x1236, 0x44, b"\xa2"), now=2.0)
    assert [c.handle for c in con.take_completions()] == [h3]


def test_empty_ack_then_separate_con_response_is_acknowledged() -> None:
    con = make()
    handle = con.request(DEV, m.POST, PATH, b"", now=0.0)
    con.take_outgoing()
    assert con.receive(DEV, m.decode(bytes((0x60, 0, 0x12, 0x34))), now=0.5)  # empty ACK
    assert con.next_deadline() is None  # no more retransmissions
    response = m.decode(m.encode(m.CON, 0x44, 0x7777, b"\xa0"))
    assert con.receive(DEV, response, now=3.0)
    assert con.take_outgoing() == [(DEV, bytes((0x60, 0x00, 0x77, 0x77)))]
    assert con.take_completions() == [(handle, response, None)]
    assert con.receive(DEV, response, now=4.0)  # retransmitted: acknowledged again, not reported again
    assert con.take_outgoing() == [(DEV, bytes((0x60, 0x00, 0x77, 0x77)))]
    assert con.take_completions() == []


def test_requests_are_not_ours() -> None:
    con = make()
    con.request(DEV, m.PUT, PATH, b"x", now=0.0)
    assert not con.receive(DEV, m.decode(m.encode(m.CON, m.POST, 0x1234, b"\xa0")), now=0.1)


def test_finished_ids_are_forgotten_after_exchange_lifetime() -> None:
    con = make()
    con.request(DEV, m.PUT, PATH, b"x", now=0.0)
    con.receive(DEV, ack(0x1234, 0x44, b"\xa0"), now=0.1)
    con.tick(0.1 + m.EXCHANGE_LIFETIME + 1)
    assert not con.receive(DEV, ack(0x1234, 0x44, b"\xa0"), now=300.0)


class FakeDevice:
    """Answers Block1 PUTs like a device: ``limit`` bytes per block (4.13 + Block1 hint above), a 4.08 at
    ``gap_at`` block, 2.31 / 2.04 otherwise."""

    def __init__(self, limit: int = 1024, fail_at: int | None = None) -> None:
        self.limit, self.fail_at, self.data, self.seen = limit, fail_at, bytearray(), []

    def answer(self, req: m.CoapMessage) -> m.CoapMessage:
        num, more, szx = m.parse_block(req.option_values(m.BLOCK1)[0])
        self.seen.append((num, more, szx))
        size = 1 << (szx + 4)
        if size > self.limit:
            hint = self.limit.bit_length() - 5
            return ack(req.mid, 0x8D, req.token, ((m.BLOCK1, m.block_option(num, more, hint)),))  # 4.13
        if num == self.fail_at:
            return ack(req.mid, 0x88, req.token)  # 4.08 Request Entity Incomplete
        del self.data[num * size :]
        self.data += req.payload
        code = 0x5F if more else 0x44
        return ack(req.mid, code, req.token, ((m.BLOCK1, m.block_option(num, more, szx)),))


def _sender(con: ConClient, device: FakeDevice):  # type: ignore[no-untyped-def]
    async def send(chunk: bytes, num: int, more: bool, szx: int, size1: int | None) -> BlockReply:
        opts = [*PATH, (m.BLOCK1, m.block_option(num, more, szx))]
        if size1 is not None:
            opts.append((m.SIZE1, m.uint_option(size1)))
        handle = con.request(DEV, m.PUT, opts, chunk, now=0.0)
        ((_, datagram),) = con.take_outgoing()
        con.receive(DEV, device.answer(m.decode(datagram)), now=0.0)
        ((h, resp, err),) = con.take_completions()
        assert h == handle and err is None and resp is not None
        b1 = resp.option_values(m.BLOCK1)
        return BlockReply(m.code_class(resp.code), m.parse_block(b1[0]) if b1 else None)

    return send


def test_block_sequence_with_413_renegotiation() -> None:
    data = bytes(range(256)) * 10  # 2560 bytes
    con, device = make(), FakeDevice(limit=256)
    result = asyncio.run(push_package(data, _sender(con, device), block_size=1024))
    assert bytes(device.data) == data
    # block 0 at 1024 refused (4.13, hint SZX 4), resent at 256 from offset 0; then 256-byte blocks 1..9
    assert device.seen[:2] == [(0, True, 6), (0, True, 4)]
    assert device.seen[2:] == [(n, n < 9, 4) for n in range(1, 10)]
    assert (result.blocks_sent, result.final_szx, result.step_downs) == (11, 4, 1)


def test_block_sequence_408_ends_the_push() -> None:
    con, device = make(), FakeDevice(fail_at=2)
    with pytest.raises(PushError) as info:
        asyncio.run(push_package(bytes(4096), _sender(con, device), block_size=1024))
    assert info.value.code == "4.08"
    assert [s[0] for s in device.seen] == [0, 1, 2]


def test_block_option_round_trip() -> None:
    assert m.block_option(0, False, 0) == b""
    assert m.block_option(0, True, 6) == b"\x0e"
    assert m.block_option(53, False, 6) == b"\x03\x56"
    assert m.parse_block(b"\x03\x5e") == (53, True, 6)
    with pytest.raises(m.CoapFormatError):
        m.parse_block(b"\x07")


# ---- claims: receive's answer from the header and token alone ------------------------------------------
def _scripted() -> ConClient:
    """DEV: one finished exchange (mid 0x1234), one acknowledged separate response (mid 0x7777), one outstanding
    request (mid 0x1235, token 0xa1, already ACKed empty), and one waiting its turn (mid 0x1236)."""
    con = make()
    con.request(DEV, m.PUT, PATH, b"x", now=0.0)
    con.receive(DEV, m.decode(bytes((0x60, 0, 0x12, 0x34))), now=0.1)
    con.receive(DEV, m.decode(m.encode(m.CON, 0x44, 0x7777, b"\xa0")), now=0.2)
    con.request(DEV, m.PUT, PATH, b"y", now=0.3)
    con.request(DEV, m.PUT, PATH, b"z", now=0.3)
    con.receive(DEV, m.decode(bytes((0x60, 0, 0x12, 0x35))), now=0.4)
    return con


@given(
    remote=st.sampled_from([DEV, OTHER]),
    mtype=st.integers(0, 3),
    code=st.sampled_from([0, m.GET, m.POST, 0x44, 0x45, 0x5F, 0x84, 0xA0, 0xFF]),
    mid=st.sampled_from([0x1234, 0x1235, 0x1236, 0x7777, 0x0001]),
    token=st.sampled_from([b"", b"\xa0", b"\xa1", b"\xa2", b"\xa1\x00"]),
)
def test_claims_is_what_receive_answers(remote: tuple[str, int], mtype: int, code: int, mid: int, token: bytes
                                        ) -> None:  # fmt: skip
    con = _scripted()
    claimed = con.claims(remote, mtype, code, mid, token)
    assert con.receive(remote, m.decode(m.encode(mtype, code, mid, token)), now=0.5) == claimed


def test_claims_changes_nothing() -> None:
    con = _scripted()
    out, done, deadline = con.take_outgoing(), con.take_completions(), con.next_deadline()
    for mtype, code, mid, token in itertools.product(range(4), (0, 0x44), (0x1234, 0x1235, 0x7777), (b"\xa0", b"\xa1")):
        con.claims(DEV, mtype, code, mid, token)
    assert (len(con), con.take_outgoing(), con.take_completions(), con.next_deadline()) == (2, [], [], deadline)
    assert (DEV, bytes((0x60, 0, 0x77, 0x77))) in out and [c.handle for c in done] == [1]  # the setup's own
    response = m.decode(m.encode(m.NON, 0x44, 0x5555, b"\xa1"))
    assert con.receive(DEV, response, now=1.0)  # the outstanding request is still there to be answered
    assert con.take_completions() == [(2, response, None)]
