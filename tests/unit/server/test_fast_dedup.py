"""The fast path's message-id memory (RFC 7252 §4.5): every request remembered for at least EXCHANGE_LIFETIME."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.coap.fastpath import _IN_PROGRESS, Dedup, dedup_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_remembered_for_the_lifetime_then_forgotten() -> None:
    clock = Clock()
    d = Dedup(lifetime=247.0, clock=clock)
    a, b = dedup_key(("::ffff:10.0.0.1", 5683), 7), dedup_key(("::ffff:10.0.0.1", 5683), 8)
    d.begin(a)
    assert d.get(a) is _IN_PROGRESS  # a duplicate while the first is still being answered: no second answer
    d.complete(a, b"\x60\x44\x00\x07")
    clock.now += 0.5
    d.begin(b)
    d.complete(b, b"\x60\x44\x00\x08")
    clock.now += 246.4  # a: 246.9 s old
    d.begin(dedup_key(("::ffff:10.0.0.2", 5683), 1))
    assert d.get(a) == b"\x60\x44\x00\x07" and d.get(b) == b"\x60\x44\x00\x08"
    clock.now += 1.7  # past lifetime + one bucket for both
    d.begin(dedup_key(("::ffff:10.0.0.3", 5683), 1))
    assert d.get(a) is None and d.get(b) is None and len(d) == 2


def test_complete_of_a_forgotten_request_is_ignored() -> None:
    d = Dedup(lifetime=10.0, clock=Clock())
    d.complete(dedup_key(("127.0.0.1", 1), 1), b"x")
    assert len(d) == 0


def test_a_storm_shares_buckets() -> None:
    clock = Clock()
    d = Dedup(lifetime=247.0, clock=clock)
    for i in range(10_000):
        clock.now += 0.0003  # 10k requests in 3 s
        d.begin(dedup_key(("::ffff:10.0.0.1", 1000 + i % 50), i & 0xFFFF))
    assert len(d) == 10_000 and len(d._order) <= 4


@given(st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=200))
def test_never_forgotten_early_always_forgotten_eventually(gaps: list[float]) -> None:
    clock = Clock()
    d = Dedup(lifetime=5.0, clock=clock)
    began: dict[tuple[str, int], float] = {}
    for i, gap in enumerate(gaps):
        clock.now += gap
        key = dedup_key(("::1", 5683), i)
        d.begin(key)
        began[key] = clock.now
        for k, t in began.items():
            if clock.now - t < 5.0:
                assert d.get(k) is not None, (clock.now - t)
    clock.now += 5.0 + Dedup.BUCKET_S + 0.001
    d.begin(dedup_key(("::1", 1), 0))
    assert all(d.get(k) is None for k in began)
