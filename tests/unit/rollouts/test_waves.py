import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.rollouts.waves import WaveSpecError, parse_waves, split_waves

DEVS = [f"d{i:02d}" for i in range(20)]


def test_cumulative_percentages() -> None:
    waves = split_waves(DEVS, parse_waves("10%,50%,100%"))
    assert [len(w) for w in waves] == [2, 8, 10]
    assert list(itertools.chain.from_iterable(waves)) == DEVS


def test_counts_with_remainder_and_canaries() -> None:
    waves = split_waves(DEVS, parse_waves("3,10"), canaries=["d19", "nope"])
    assert waves[0] == ["d19"]
    assert [len(w) for w in waves] == [1, 3, 7, 9]
    assert sorted(list(itertools.chain.from_iterable(waves))) == DEVS


def test_equal_waves_and_partial_percent() -> None:
    assert [len(w) for w in split_waves(DEVS, parse_waves("equal:3"))] == [7, 6, 7]
    assert [len(w) for w in split_waves(DEVS, parse_waves("25%"))] == [5]
    assert split_waves([], parse_waves("10%,100%")) == []


@pytest.mark.parametrize("text", ["10%,5", "50%,10%", "0", "-1", "abc", "150%", "equal:0", "equal:x", "1.5,3", "nan"])
def test_bad_specs(text: str) -> None:
    with pytest.raises(WaveSpecError):
        parse_waves(text)


def test_str_round_trip() -> None:
    for text in ("10%,50%,100%", "5,20", "equal:4"):
        assert str(parse_waves(text)) == text


@given(st.integers(0, 300), st.lists(st.integers(1, 100), min_size=1, max_size=6))
def test_every_device_in_exactly_one_wave(n: int, pcts: list[int]) -> None:
    devices = [f"e{i}" for i in range(n)]
    spec = parse_waves(",".join(f"{p}%" for p in sorted(pcts)[:-1]) + ("," if len(pcts) > 1 else "") + "100%")
    waves = split_waves(devices, spec)
    assert list(itertools.chain.from_iterable(waves)) == devices
    assert all(waves)
