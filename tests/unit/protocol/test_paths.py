"""LwM2MPath parsing, formatting, bounds and structure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwm2m_server.protocol.paths import MAX_ID, LwM2MPath

ids = st.integers(min_value=0, max_value=MAX_ID)
paths = st.lists(ids, min_size=1, max_size=4).map(lambda xs: LwM2MPath.from_ids(*xs))


@pytest.mark.parametrize(
    ("text", "expected", "level"),
    [
        ("/3", LwM2MPath(3), "object"),
        ("/3/0", LwM2MPath(3, 0), "instance"),
        ("/3/0/1", LwM2MPath(3, 0, 1), "resource"),
        ("/3/0/6/1", LwM2MPath(3, 0, 6, 1), "resource_instance"),
        ("3/0", LwM2MPath(3, 0), "instance"),
        ("/3/0/", LwM2MPath(3, 0), "instance"),
        ("/65534/65534/65534/65534", LwM2MPath(65534, 65534, 65534, 65534), "resource_instance"),
        ("/32001/0/10/3", LwM2MPath(32001, 0, 10, 3), "resource_instance"),
    ],
)
def test_parse_valid(text: str, expected: LwM2MPath, level: str) -> None:
    path = LwM2MPath.parse(text)
    assert path == expected
    assert path.level == level


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/",
        "//",
        "/3//0",
        "/65535",
        "/3/65535",
        "/3/0/1/2/3",
        "/a",
        "/3/x",
        "/-1",
        "/+3",
        "/ 3",
        "/3.0",
        "/3/0//",
        "/\uff13",
        "/123456",
        "/3/0/1/" + "9" * 200,
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        LwM2MPath.parse(text)


def test_parse_rejects_non_str() -> None:
    with pytest.raises(ValueError):
        LwM2MPath.parse(3)  # type: ignore[arg-type]


def test_format() -> None:
    assert str(LwM2MPath(3)) == "/3"
    assert str(LwM2MPath(5, 0, 3)) == "/5/0/3"
    assert str(LwM2MPath(3, 0, 6, 1)) == "/3/0/6/1"
    assert repr(LwM2MPath(3, 0)) == "LwM2MPath('/3/0')"


@pytest.mark.parametrize(
    "args",
    [(65535,), (3, 65535), (3, 0, 65535), (3, 0, 1, 65535), (-1,), (3, None, 1), (3, 0, None, 1), (True,), (3, 0.0)],
)
def test_constructor_bounds_and_shape(args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        LwM2MPath(*args)  # type: ignore[arg-type]


def test_structure() -> None:
    p = LwM2MPath.parse("/3/0/6/1")
    assert p.ids == (3, 0, 6, 1)
    assert p.depth == 4
    assert p.uri_path == ("3", "0", "6", "1")
    assert p.parent == LwM2MPath(3, 0, 6)
    assert p.parent.parent.parent == LwM2MPath(3)
    with pytest.raises(ValueError):
        _ = LwM2MPath(3).parent
    assert LwM2MPath(3).child(0).child(1) == LwM2MPath(3, 0, 1)
    with pytest.raises(ValueError):
        p.child(0)
    assert p.truncate("instance") == LwM2MPath(3, 0)
    with pytest.raises(ValueError):
        LwM2MPath(3).truncate("resource")


def test_is_prefix_of() -> None:
    assert LwM2MPath(3, 0).is_prefix_of(LwM2MPath(3, 0, 1, 2))
    assert LwM2MPath(3, 0).is_prefix_of(LwM2MPath(3, 0))
    assert not LwM2MPath(3, 0).is_prefix_of(LwM2MPath(3))
    assert not LwM2MPath(3, 0).is_prefix_of(LwM2MPath(3, 1, 0))
    assert not LwM2MPath(3).is_prefix_of(LwM2MPath(30, 0))


def test_ordering_parent_first_and_numeric() -> None:
    unsorted = [LwM2MPath(3, 0, 10), LwM2MPath(3, 0, 2), LwM2MPath(3), LwM2MPath(3, 0), LwM2MPath(1, 0, 1)]
    assert [str(p) for p in sorted(unsorted)] == ["/1/0/1", "/3", "/3/0", "/3/0/2", "/3/0/10"]
    assert LwM2MPath(3) <= LwM2MPath(3)
    assert LwM2MPath(4) > LwM2MPath(3, 0)
    assert LwM2MPath(4) >= LwM2MPath(3, 0)


def test_hashable_and_immutable() -> None:
    content = {LwM2MPath(3, 0, 0): "x"}
    assert content[LwM2MPath.parse("/3/0/0")] == "x"
    with pytest.raises(AttributeError):
        LwM2MPath(3).object_id = 4  # type: ignore[misc]


@given(paths)
def test_round_trip(path: LwM2MPath) -> None:
    assert LwM2MPath.parse(str(path)) == path
    assert LwM2MPath.parse(str(path).lstrip("/")) == path
    assert LwM2MPath.from_ids(*path.ids) == path


@given(paths, paths)
def test_order_matches_id_tuples(a: LwM2MPath, b: LwM2MPath) -> None:
    assert (a < b) == (a.ids < b.ids)
    assert a.is_prefix_of(b) == (b.ids[: len(a.ids)] == a.ids)


@given(st.text(max_size=40))
def test_parse_never_raises_anything_but_value_error(text: str) -> None:
    try:
        path = LwM2MPath.parse(text)
    except ValueError:
        return
    assert LwM2MPath.parse(str(path)) == path
    assert [int(x) for x in text.strip("/").split("/")] == list(path.ids)
