"""JSON <-> LwM2M value conversion used by the REST API (pure functions, real object model)."""

from __future__ import annotations

import math

import pytest

from lwm2m_server.api.values import BodyError, body_to_content, content_to_json, to_jsonable, value_to_json
from lwm2m_server.protocol.model import ObjectLink, ObjectRegistry
from lwm2m_server.protocol.paths import LwM2MPath

P = LwM2MPath.parse
MODEL = ObjectRegistry.default()


def test_values_render_like_decode() -> None:
    content = {
        P("/3/0/0"): "Acme",
        P("/3/0/13"): 1700000000,
        P("/3/0/6/1"): 5,
        P("/3/0/9"): 2.5,
        P("/5/0/0"): b"\x00\xff",
        P("/1/0/9"): True,
        P("/11/0/1"): ObjectLink(3, 0),
    }
    assert content_to_json(content) == {
        "/1/0/9": True,
        "/3/0/0": "Acme",
        "/3/0/6/1": 5,
        "/3/0/9": 2.5,
        "/3/0/13": 1700000000,
        "/5/0/0": {"hex": "00ff"},
        "/11/0/1": "3:0",
    }
    assert value_to_json(math.inf) == "inf"


def test_to_jsonable_handles_paths_sets_and_nested_content() -> None:
    data = {"path": P("/3/0/1"), "content": {P("/3/0/1"): b"\x01"}, "formats": frozenset({112, 11542})}
    assert to_jsonable(data) == {"path": "/3/0/1", "content": {"/3/0/1": {"hex": "01"}}, "formats": [112, 11542]}


def test_resource_write_is_coerced_by_model_type() -> None:
    assert body_to_content(P("/1/0/1"), 300, MODEL) == {P("/1/0/1"): 300}  # lifetime: Integer
    assert body_to_content(P("/3/0/14"), "+02", MODEL) == {P("/3/0/14"): "+02"}  # UTC offset: String
    assert body_to_content(P("/5/0/0"), {"hex": "0aff"}, MODEL) == {P("/5/0/0"): b"\x0a\xff"}
    assert body_to_content(P("/5/0/0"), {"base64": "AQI="}, MODEL) == {P("/5/0/0"): b"\x01\x02"}


def test_instance_write_accepts_relative_and_absolute_keys() -> None:
    content = body_to_content(P("/1/0"), {"1": 60, "/1/0/6": False, "2": 1.0}, MODEL)
    assert content == {P("/1/0/1"): 60, P("/1/0/6"): False, P("/1/0/2"): 1}


def test_multiple_resource_instances() -> None:
    content = body_to_content(P("/3/0"), {"6": {"0": 1, "1": 5}}, MODEL)
    assert content == {P("/3/0/6/0"): 1, P("/3/0/6/1"): 5}
    assert body_to_content(P("/3/0/6"), {"0": 1}, MODEL) == {P("/3/0/6/0"): 1}


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/1/0/1", "sixty", "expected an integer"),
        ("/1/0/1", True, "expected an integer"),
        ("/1/0/1", 1.5, "expected an integer"),
        ("/3/0/14", 3, "expected a string"),
        ("/1/0/6", "yes", "expected true or false"),
        ("/5/0/0", "00ff", "opaque values"),
        ("/5/0/0", {"hex": "zz"}, "invalid hex"),
        ("/1/0", 5, "needs a JSON object"),
        ("/1", {"0/1": 5}, "object-instance"),
        ("/1/0", {}, "empty write body"),
        ("/1/0", {"/3/0/1": "x"}, "not below"),
        ("/1/0", {"a": 1}, "bad key"),
        ("/3/0/6", 5, "multiple resource"),
        ("/3/0/4", 1, "not writable"),
    ],
)
def test_bad_bodies_are_rejected_with_a_reason(path: str, body: object, fragment: str) -> None:
    with pytest.raises(BodyError, match=fragment):
        body_to_content(P(path), body, MODEL)
