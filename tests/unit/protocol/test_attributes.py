"""Write-Attributes query building, parsing and validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.protocol.attributes import ATTRIBUTE_NAMES, WriteAttributes, WriteAttributesError
from lwm2m_server.protocol.linkformat import parse_link_format
from lwm2m_server.protocol.model import ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath


def test_to_query_order_and_number_format() -> None:
    attrs = WriteAttributes(pmax=60, pmin=10, gt=20.5, lt=-3.0, st=1, epmin=1, epmax=5)
    assert attrs.to_query() == ["pmin=10", "pmax=60", "gt=20.5", "lt=-3", "st=1", "epmin=1", "epmax=5"]


def test_clear_is_valueless() -> None:
    attrs = WriteAttributes(pmin=5, clear=frozenset({"pmax", "st"}))
    assert attrs.to_query() == ["pmin=5", "pmax", "st"]
    assert WriteAttributes.from_query(["pmin=5", "pmax", "st"]) == attrs


def test_from_query() -> None:
    attrs = WriteAttributes.from_query(["pmin=10", "pmax=60", "gt=20.5", "lt=1e1", "st=0.5", "epmin=0", "epmax=9"])
    assert attrs.as_dict() == {"pmin": 10, "pmax": 60, "gt": 20.5, "lt": 10.0, "st": 0.5, "epmin": 0, "epmax": 9}
    assert not attrs.is_empty
    assert WriteAttributes.from_query([]).is_empty


@pytest.mark.parametrize(
    "query",
    [
        ["foo=1"],
        ["pmin=-1"],
        ["pmin=1.5"],
        ["pmin=x"],
        ["pmin="],
        ["gt=abc"],
        ["gt=nan"],
        ["gt=inf"],
        ["gt="],
        ["pmin=1", "pmin=2"],
        ["pmin", "pmin=2"],
        ["pmin=20", "pmax=10"],
        ["epmin=20", "epmax=10"],
        ["st=-1"],
        ["lt=5", "gt=5"],
        ["lt=10", "gt=5"],
        ["lt=1", "gt=5", "st=2"],
        ["pmin=99999999999"],
    ],
)
def test_invalid_queries(query: list[str]) -> None:
    with pytest.raises(WriteAttributesError):
        WriteAttributes.from_query(query)


def test_constructor_validation() -> None:
    for kwargs in ({"pmin": True}, {"pmin": 1.0}, {"gt": float("nan")}, {"pmax": -1}, {"gt": "1"}):
        with pytest.raises(WriteAttributesError):
            WriteAttributes(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(WriteAttributesError, match="both"):
        WriteAttributes(pmin=1, clear=frozenset({"pmin"}))
    with pytest.raises(WriteAttributesError, match="unknown"):
        WriteAttributes(clear=frozenset({"foo"}))
    WriteAttributes(lt=1, gt=5, st=1.9)  # 1 + 3.8 < 5 holds


def test_validate_for_resource_types() -> None:
    reg = ObjectRegistry.default()
    numeric = WriteAttributes(gt=50.0)
    battery = LwM2MPath(3, 0, 9)
    numeric.validate_for(battery, reg.resource(battery))
    voltage = LwM2MPath(3, 0, 7)
    with pytest.raises(WriteAttributesError, match="multiple"):
        numeric.validate_for(voltage, reg.resource(voltage))
    numeric.validate_for(LwM2MPath(3, 0, 7, 0), reg.resource(LwM2MPath(3, 0, 7, 0)))
    manufacturer = LwM2MPath(3, 0, 0)
    with pytest.raises(WriteAttributesError, match="numeric"):
        numeric.validate_for(manufacturer, reg.resource(manufacturer))
    with pytest.raises(WriteAttributesError, match="resources"):
        numeric.validate_for(LwM2MPath(3, 0), None)
    numeric.validate_for(LwM2MPath(3, 0, 999), None)  # unknown resource: no opinion
    WriteAttributes(pmin=1, pmax=2).validate_for(LwM2MPath(3), None)  # periods apply at any level


def test_from_discover_link_params() -> None:
    (link,) = parse_link_format("</3/0/9>;pmin=10;pmax=60;gt=50;dim=2;obs")
    attrs = WriteAttributes.from_link_params(link.params)
    assert attrs.as_dict() == {"pmin": 10, "pmax": 60, "gt": 50.0}


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "pmin": st.integers(0, 1000),
            "epmin": st.integers(0, 1000),
            "st": st.floats(0, 1e6, allow_nan=False),
            "gt": st.floats(-1e9, 1e9, allow_nan=False),
        },
    ),
    st.sets(st.sampled_from(["pmax", "lt", "epmax"])),
)
def test_round_trip(values: dict[str, float], clear: set[str]) -> None:
    attrs = WriteAttributes(**values, clear=frozenset(clear))  # type: ignore[arg-type]
    again = WriteAttributes.from_query(attrs.to_query())
    assert again == attrs


@given(st.lists(st.text(max_size=12), max_size=6))
def test_fuzz_only_write_attributes_error(query: list[str]) -> None:
    try:
        attrs = WriteAttributes.from_query(query)
    except WriteAttributesError:
        return
    assert set(attrs.as_dict()) <= set(ATTRIBUTE_NAMES)
