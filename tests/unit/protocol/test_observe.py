"""RFC 7641 §3.4 notification ordering (the client side's freshness rule)."""

from __future__ import annotations

from lwm2m_server.protocol.observe import OBSERVE_MAX_SILENCE_S, OBSERVE_WRAP, is_fresher


def test_larger_number_within_half_the_space_is_newer() -> None:
    assert is_fresher(5, 0.0, 6, 1.0)
    assert is_fresher(5, 0.0, 5 + OBSERVE_WRAP - 1, 1.0)
    assert not is_fresher(5, 0.0, 5 + OBSERVE_WRAP, 1.0)  # that far ahead means it is behind (wrapped)


def test_smaller_or_equal_number_is_older_unless_wrapped() -> None:
    assert not is_fresher(6, 0.0, 5, 1.0)
    assert not is_fresher(6, 0.0, 6, 1.0)
    assert is_fresher((1 << 24) - 1, 0.0, 0, 1.0)  # the 24-bit sequence wrapped around
    assert not is_fresher(OBSERVE_WRAP, 0.0, 0, 1.0)


def test_anything_is_newer_after_the_silence() -> None:
    assert not is_fresher(6, 0.0, 5, OBSERVE_MAX_SILENCE_S)
    assert is_fresher(6, 0.0, 5, OBSERVE_MAX_SILENCE_S + 0.001)
