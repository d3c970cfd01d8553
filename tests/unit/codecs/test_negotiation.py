"""choose_format: announced formats first, else the version's mandatory format."""

from __future__ import annotations

import pytest

from lwm2m_server.protocol.codecs import ContentFormat as CF
from lwm2m_server.protocol.negotiation import choose_composite_answer, choose_format, is_single_value
from lwm2m_server.protocol.paths import LwM2MPath
from tests.unit.codecs.synthetic import MODEL

P = LwM2MPath.parse
NONE: frozenset[int] = frozenset()


@pytest.mark.parametrize(
    ("supported", "expected"),
    [
        ({112, 110, 11542}, CF.SENML_CBOR),
        ({110, 11542}, CF.SENML_JSON),
        ({11542, 11543}, CF.TLV),
        ({1542}, CF.OLD_TLV),
        ({11543}, CF.LWM2M_JSON),
        ({1543}, CF.OLD_LWM2M_JSON),
    ],
)
def test_announced_formats_in_preference_order(supported: set[int], expected: CF) -> None:
    for version in ("1.0", "1.1"):
        assert choose_format(P("/3/0"), version, frozenset(supported), MODEL) == expected
        assert choose_format(P("/3/0/0"), version, frozenset(supported), MODEL) == expected


def test_lwm2m_10_defaults_to_tlv() -> None:
    for path in ("/3", "/3/0", "/3/0/0", "/3/0/6", "/3/0/6/1"):
        assert choose_format(P(path), "1.0", NONE, MODEL) == CF.TLV


def test_lwm2m_11_single_values_use_text_or_opaque() -> None:
    assert choose_format(P("/3/0/0"), "1.1", NONE, MODEL) == CF.TEXT  # single String
    assert choose_format(P("/3/0/6/1"), "1.1", NONE, MODEL) == CF.TEXT  # one resource instance
    assert choose_format(P("/5/0/0"), "1.1", NONE, MODEL) == CF.OPAQUE  # Opaque package
    assert choose_format(P("/30000/0/1"), "1.1", NONE, MODEL) == CF.TEXT  # unknown resource: assume single


def test_lwm2m_11_multi_values_without_announcement_use_tlv() -> None:
    for path in ("/3", "/3/0", "/3/0/6"):
        assert choose_format(P(path), "1.1", NONE, MODEL) == CF.TLV


def test_unannounced_formats_like_cbor_and_text_do_not_change_the_choice() -> None:
    assert choose_format(P("/3/0"), "1.1", frozenset({0, 40, 42, 60}), MODEL) == CF.TLV
    assert choose_format(P("/3/0/9"), "1.1", frozenset({0, 40, 42, 60}), MODEL) == CF.TEXT


def test_writing_an_opaque_resource_is_raw_bytes_in_every_version() -> None:
    for version in ("1.0", "1.1", "1.2"):
        for supported in (NONE, frozenset({112, 11542})):
            assert choose_format(P("/5/0/0"), version, supported, MODEL, for_write=True) == CF.OPAQUE
    # reads of it follow the announced formats
    assert choose_format(P("/5/0/0"), "1.1", frozenset({112}), MODEL) == CF.SENML_CBOR
    # other writes negotiate like reads
    assert choose_format(P("/5/0/1"), "1.1", frozenset({112}), MODEL, for_write=True) == CF.SENML_CBOR
    assert choose_format(P("/5/0/1"), "1.1", NONE, MODEL, for_write=True) == CF.TEXT


def test_is_single_value() -> None:
    assert is_single_value(P("/3/0/0"), MODEL)
    assert not is_single_value(P("/3/0/6"), MODEL)
    assert is_single_value(P("/3/0/6/0"), MODEL)
    assert not is_single_value(P("/3/0"), MODEL)
    assert not is_single_value(P("/3"), MODEL)


def test_lwm2m_12_client_announcing_lwm2m_cbor_gets_it() -> None:
    """LwM2M-CBOR (11544) is a 1.2 format: asked for when a 1.2 client announced it, for reads, writes and
    single values alike; an opaque resource written alone still goes raw."""
    both = frozenset({112, 110, 11542, 11544})
    for path in ("/3", "/3/0", "/3/0/0", "/3/0/6", "/3/0/6/1"):
        assert choose_format(P(path), "1.2", both, MODEL) == CF.LWM2M_CBOR
        assert choose_format(P(path), "1.2", frozenset({11544}), MODEL) == CF.LWM2M_CBOR
    assert choose_format(P("/1/0/1"), "1.2", both, MODEL, for_write=True) == CF.LWM2M_CBOR
    assert choose_format(P("/5/0/0"), "1.2", both, MODEL, for_write=True) == CF.OPAQUE
    assert choose_composite_answer("1.2", both, CF.SENML_CBOR) == CF.LWM2M_CBOR


def test_lwm2m_cbor_is_not_used_below_1_2_or_unannounced() -> None:
    both = frozenset({112, 11544})
    for version in ("1.0", "1.1"):
        assert choose_format(P("/3/0"), version, both, MODEL) == CF.SENML_CBOR
        assert choose_composite_answer(version, both, CF.SENML_JSON) == CF.SENML_JSON
    assert choose_format(P("/3/0"), "1.2", frozenset({112}), MODEL) == CF.SENML_CBOR
    assert choose_format(P("/3/0"), "1.2", NONE, MODEL) == CF.TLV
    assert choose_composite_answer("1.2", frozenset({112}), CF.SENML_CBOR) == CF.SENML_CBOR
