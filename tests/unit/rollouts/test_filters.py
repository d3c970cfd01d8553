import keyword

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwm2m_server.rollouts.filters import FIELDS, FILTER_DOC, FILTER_HELP, FilterError, parse_filter

M4 = {"endpoint": "m4-1", "accelerator": "none", "ram_total": 262144, "fpu": True, "cpu": "cortex-m4f"}
M0 = {"endpoint": "m0-1", "accelerator": "none", "ram_total": 65536, "fpu": False, "cpu": "cortex-m0+"}
NPU = {"endpoint": "u55-1", "accelerator": "ethos-u55-128", "ram_total": 524288, "fpu": True}
UNKNOWN = {"endpoint": "legacy-1", "accelerator": None, "ram_total": None}


def test_issue_example() -> None:
    f = parse_filter('accelerator == "none" and ram_total >= 131072')
    assert [d["endpoint"] for d in (M4, M0, NPU, UNKNOWN) if f.matches(d)] == ["m4-1"]
    assert f.names == {"accelerator", "ram_total"}


def test_membership_not_or_and_chained() -> None:
    assert parse_filter('endpoint in ["m0-1", "u55-1"]').matches(M0)
    assert not parse_filter('endpoint not in ("m0-1",)').matches(M0)
    assert parse_filter("not fpu or ram_total > 500000").matches(NPU)
    assert parse_filter("65536 <= ram_total < 262144").matches(M0)
    assert not parse_filter("65536 <= ram_total < 262144").matches(M4)
    assert parse_filter("ram_total > -1").matches(M0)


def test_empty_filter_matches_all_and_unknown_hardware_never_crashes() -> None:
    assert all(parse_filter("  ").matches(d) for d in (M4, M0, NPU, UNKNOWN))
    assert not parse_filter("ram_total >= 1").matches(UNKNOWN)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('x')",
        "ram_total.__class__",
        "[x for x in y]",
        "a if b else c",
        "ram_total +",
        "lambda: 1",
        "f(1)",
        "x[0]",
        "-ram_total > 1",
        "ram_total == 1; 2",
    ],
)
def test_rejects_anything_outside_the_language(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_limits() -> None:
    with pytest.raises(FilterError, match="longer"):
        parse_filter("a == 1 and " * 300 + "a == 1")
    with pytest.raises(FilterError, match="complex"):
        parse_filter(" or ".join(f"a == {i}" for i in range(60)))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_is_parsed_or_rejected_cleanly(text: str) -> None:
    try:
        f = parse_filter(text)
    except FilterError:
        return
    assert isinstance(f.matches(M4), bool)


# ---- mistakes never pass silently --------------------------------------------------------------------------
def test_unknown_field_is_named_with_the_valid_fields_their_types_and_examples() -> None:
    with pytest.raises(FilterError) as info:
        parse_filter('colour == "red"')
    text = str(info.value)
    assert text.startswith("column 1: unknown field 'colour'")
    for f in FIELDS:
        assert f"{f.name} ({f.type}), e.g. {f.example}" in text
    assert info.value.column == 1


def test_typo_gets_the_close_field() -> None:
    with pytest.raises(FilterError, match="unknown field 'ram_totl'; did you mean ram_total"):
        parse_filter("ram_totl >= 1")


@pytest.mark.parametrize(("text", "word", "column"), [
    ("accelerator == none", "none", 16),
    ('cpu in [cortex, "x"]', "cortex", 9),
    ("none == accelerator", "none", 1),
])  # fmt: skip
def test_unquoted_word_gets_did_you_mean(text: str, word: str, column: int) -> None:
    with pytest.raises(FilterError, match=f'did you mean "{word}"') as info:
        parse_filter(text)
    assert info.value.column == column


@pytest.mark.parametrize(("text", "column", "words"), [
    ("ram_total >", 12, "ends too early"),
    ('accelerator == "none" and ram_total >', 38, "ends too early"),
    ("(ram_total > 1", 1, "never closed"),
    ("ram_total = 5", 11, "use == to compare"),
    ('cpu == "a" and fpu = True', 20, "use == to compare"),
    ("ram_total >= 1MiB and fpu = True", 27, "use == to compare"),
    ("ram_total >= 1MiB and colour", 23, "unknown field 'colour'"),
    ("ram_total >= 1MiB and f(1)", 23, "function call"),
    ("fpu is True", 1, "'is' is not allowed"),
    ('cpu == "x', 8, "unterminated string"),
    ("ram_total >= 1.3k", 14, "not a whole number of bytes"),
])  # fmt: skip
def test_errors_point_at_the_right_column(text: str, column: int, words: str) -> None:
    with pytest.raises(FilterError, match=words) as info:
        parse_filter(text)
    assert info.value.column == column
    caret = str(info.value).splitlines()[2]
    assert caret.index("^") - 2 == column - 1  # the caret line is indented like the echoed text


def test_equals_inside_a_string_is_a_value() -> None:
    assert parse_filter('cpu == "a=b"').matches({"cpu": "a=b"})


def test_sizes_with_units_use_the_one_size_parser_and_echo_datasheet_units() -> None:
    f = parse_filter('ram_total >= 256KiB and flash_total >= 1MiB and cpu == "64k"')
    assert f.matches({"ram_total": 262_144, "flash_total": 1 << 20, "cpu": "64k"})
    assert not f.matches({"ram_total": 262_143, "flash_total": 1 << 20, "cpu": "64k"})
    assert f.notes == ()
    g = parse_filter("ram_total >= 64KB")
    assert g.matches({"ram_total": 65_536}) and not g.matches({"ram_total": 64_000})
    assert g.notes == ("filter 64KB = 65,536 B (KB read as KiB; write 64000 for 64,000 B)",)


def test_the_field_table_is_what_a_device_exposes() -> None:
    from types import SimpleNamespace

    from lwm2m_server.inventory import DeviceProfile
    from lwm2m_server.rollouts.deployer import device_attributes

    reg = SimpleNamespace(endpoint="e", lwm2m_version="1.1", binding="U", queue_mode=False)
    attrs = device_attributes(reg, DeviceProfile())
    assert set(attrs) == {f.name for f in FIELDS}


def test_field_docs_come_from_the_table() -> None:
    for f in FIELDS:
        assert f"`{f.name}`" in FILTER_DOC and f.name in FILTER_HELP


def test_readme_documents_exactly_the_field_table() -> None:
    from pathlib import Path

    from lwm2m_server.rollouts.filters import fields_markdown

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert fields_markdown() in readme


_IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda s: s not in {f.name for f in FIELDS} and not keyword.iskeyword(s))


@settings(max_examples=200, deadline=None)
@given(_IDENT, st.sampled_from(["{} == 1", 'ram_total > 1 and {} == "x"', "not {}", "cpu == {}", "{}"]))
def test_any_name_outside_the_table_is_refused_and_named(name: str, template: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(template.format(name))
    text = str(info.value)
    assert name in text and ("unknown field" in text or f'did you mean "{name}"' in text)
    assert info.value.column == template.index("{}") + 1
