"""Target filters for rollouts: a small, safe expression language over device attributes.

Operators write filters such as ``accelerator == "none" and ram_total >= 128KiB`` or
``endpoint in ["dev-1", "dev-2"]``. The text is parsed with :mod:`ast` and only a whitelist of
node types is accepted (comparisons, ``and``/``or``/``not``, names, literals, lists), so a filter can
never call a function or reach an attribute. Evaluation is a pure function of a mapping.

Mistakes never pass silently: every name must be one of :data:`FIELDS` (the single source for ``--help``, the
README table and the OpenAPI description), an unquoted word gets ``did you mean "none"?``, ``=`` gets
``use == to compare``, and syntax errors point at the column (1-based) where the filter went wrong. Sizes may be
written with units (``64KiB``, ``1MiB``; ``64KB``/``64k`` read as KiB) and are read by the one size parser.
"""

from __future__ import annotations

import ast
import difflib
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compilers.sizes import SIZE_LITERAL, SizeError, parse_size, size_note

MAX_FILTER_LENGTH = 2000
MAX_NODES = 200


@dataclass(frozen=True)
class Field:
    """One attribute a filter can name."""

    name: str
    type: str
    description: str
    example: str


FIELDS: tuple[Field, ...] = (
    Field("endpoint", "string", "endpoint name", 'endpoint in ["sim-0001", "sim-0002"]'),
    Field("lwm2m_version", "string", "LwM2M version of the registration", 'lwm2m_version == "1.1"'),
    Field("binding", "string", "binding (U, UQ, ...)", 'binding == "U"'),
    Field("queue_mode", "bool", "the device sleeps between uplinks", "not queue_mode"),
    Field("manufacturer", "string", "/3/0/0 Manufacturer", 'manufacturer == "TinyMLaaS Sim"'),
    Field("model", "string", "/3/0/1 Model Number (the simulator puts its fleet profile name here)",
          'model == "cortex-m4f-256k"'),
    Field("firmware_version", "string", "/3/0/3 Firmware Version", 'firmware_version == "1.0.0"'),
    Field("ram_total", "size", "RAM total, bytes", "ram_total >= 256KiB"),
    Field("ram_free_ml", "size", "RAM free for ML (the arena budget), bytes", "ram_free_ml >= 64KiB"),
    Field("flash_total", "size", "flash total, bytes", "flash_total >= 1MiB"),
    Field("flash_free", "size", "flash free for models, bytes", "flash_free >= 256KiB"),
    Field("cpu", "string", "CPU core", 'cpu == "cortex-m4f"'),
    Field("clock_mhz", "int", "CPU clock, MHz", "clock_mhz >= 80"),
    Field("fpu", "bool", "has a floating-point unit", "fpu"),
    Field("accelerator", "string", 'NPU: "none", "ethos-u55-128", ...', 'accelerator == "none"'),
    Field("accelerator_sram", "size", "accelerator SRAM, bytes", "accelerator_sram >= 256KiB"),
    Field("runtime", "string", "ML runtime", 'runtime == "tflm-2024"'),
    Field("ops", "list of strings", "supported TFLite ops (empty = any)", '"CONV_2D" in ops'),
    Field("max_package", "size", "largest package the device accepts, bytes", "max_package >= 128KiB"),
    Field("delivery_method", "string", "pull, push or both", 'delivery_method in ["pull", "both"]'),
    Field("protocols", "list of strings", "download protocols", '"coap" in protocols'),
    Field("hardware_known", "bool", "the device has the 32001 TinyML Hardware object", "hardware_known"),
)
FIELD_NAMES = frozenset(f.name for f in FIELDS)
_CONSTANTS = {"True": True, "False": False, "None": None}
_OPERATORS = "==, !=, <, <=, >, >=, in, not in, and, or, not"


def fields_text(indent: str = "  ") -> str:
    """The field table as plain lines (CLI help, error messages)."""
    return "\n".join(f"{indent}{f.name} ({f.type}), e.g. {f.example}" for f in FIELDS)


def fields_markdown() -> str:
    """The field table as Markdown (OpenAPI description, README)."""
    rows = [f"| `{f.name}` | {f.type} | {f.description} | `{f.example}` |" for f in FIELDS]
    return "\n".join(["| field | type | what | example |", "|---|---|---|---|", *rows])


FILTER_HELP = (f"Filter over device attributes with {_OPERATORS}; text values in quotes; sizes may have units "
               f"(64KiB, 1MiB; 64KB/64k = KiB). Fields: " + ", ".join(f"{f.name} ({f.type})" for f in FIELDS))
FILTER_DOC = ("A filter over device attributes, e.g. `accelerator == \"none\" and ram_total >= 128KiB`. "
              f"Operators: {_OPERATORS}. Text values are quoted; sizes may have units (64KiB, 1MiB; 64KB and 64k "
              "are read as KiB). An empty filter matches every device.\n\n" + fields_markdown())

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_SYMBOLS = {"BinOp": "arithmetic", "Call": "a function call", "Attribute": "attribute access (.)",
            "Subscript": "indexing ([...] after a value)", "IfExp": "if/else", "Lambda": "lambda",
            "ListComp": "a comprehension", "GeneratorExp": "a comprehension", "Dict": "a dict",
            "Set": "a set", "JoinedStr": "an f-string", "NamedExpr": "':='", "Is": "'is'", "IsNot": "'is not'",
            "Starred": "*"}  # fmt: skip


class FilterError(ValueError):
    """A filter that cannot be parsed or uses something the language does not allow; ``column`` is 1-based."""

    def __init__(self, message: str, column: int | None = None, text: str = "", detail: str = "") -> None:
        self.column = column
        self.reason = message
        if column is not None and text:
            message = f"column {column}: {message}\n  {text}\n  {' ' * (column - 1)}^"
        super().__init__(message + (f"\n{detail}" if detail else ""))


@dataclass(frozen=True)
class DeviceFilter:
    """A parsed filter; ``matches(attrs)`` evaluates it against one device's attributes."""

    text: str
    _tree: ast.Expression
    notes: tuple[str, ...] = field(default=())
    """One line per size written with a datasheet unit (64KB, 64k): the byte count it was read as."""

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n.id for n in ast.walk(self._tree) if isinstance(n, ast.Name)) - _CONSTANTS.keys()

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        try:
            return bool(_eval(self._tree.body, attributes))
        except TypeError:
            # e.g. comparing None (hardware unknown) with an int: such a device does not match.
            return False


# ---- pre-scan: strings are skipped, sizes become byte counts, a lone "=" is caught ------------------------
_SCAN = re.compile(r"""(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<eq>(?<![=!<>])=(?!=))|"""
                   rf"""(?<![\w.])(?P<size>{SIZE_LITERAL.pattern})""")  # fmt: skip


@dataclass
class _Source:
    original: str
    parsed: str = ""
    spans: list[tuple[int, int, int, int]] = field(default_factory=list)  # new start, old start, new len, old len
    notes: list[str] = field(default_factory=list)

    def column(self, new_offset: int) -> int:
        """1-based column in the operator's text of a 0-based character offset in the parsed text."""
        delta = 0
        for new_start, old_start, new_len, old_len in self.spans:
            if new_offset < new_start:
                break
            if new_offset < new_start + new_len:
                return old_start + 1
            delta += old_len - new_len
        return new_offset + delta + 1


def _prescan(text: str) -> _Source:
    src = _Source(text)
    out: list[str] = []
    pos = 0
    for match in _SCAN.finditer(text):
        if match.group("eq") is not None:
            raise FilterError("use == to compare (= is not an operator in a filter)", match.start() + 1, text)
        if match.group("size") is None:
            continue
        literal = match.group("size")
        try:
            value = str(parse_size(literal, "size"))
        except SizeError as exc:
            raise FilterError(str(exc), match.start() + 1, text) from None
        out.append(text[pos:match.start()])
        new_start = sum(len(p) for p in out)
        src.spans.append((new_start, match.start(), len(value), len(literal)))
        out.append(value)
        pos = match.end()
        note = size_note(literal, "filter")
        if note is not None:
            src.notes.append(note)
    out.append(text[pos:])
    src.parsed = "".join(out)
    return src


def parse_filter(text: str) -> DeviceFilter:
    """Parse ``text``; an empty filter matches every device. :class:`FilterError` says what is wrong and where."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter longer than {MAX_FILTER_LENGTH} characters")
    text = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    if not text.strip():
        return DeviceFilter(text.strip(), ast.parse("True", mode="eval"))
    src = _prescan(text)
    try:
        tree = ast.parse(src.parsed, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(exc, src) from None
    except ValueError as exc:  # e.g. a NUL character
        raise FilterError(f"unreadable filter: {exc}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise FilterError(f"filter too complex (more than {MAX_NODES} nodes)")
    parents = {id(child): node for node in nodes for child in ast.iter_child_nodes(node)}
    for node in nodes:
        _check(node, src, parents)
    return DeviceFilter(text.strip(), tree, tuple(src.notes))


def _syntax_error(exc: SyntaxError, src: _Source) -> FilterError:
    end = len(src.parsed.rstrip())
    offset = (exc.offset or 0) - 1
    if offset < 0 or offset >= end:
        return FilterError("the filter ends too early: a value or a closing bracket is missing",
                           len(src.original.rstrip()) + 1, src.original)
    msg = exc.msg.split(" (detected at")[0]
    if msg.startswith("invalid syntax"):
        msg = f"invalid syntax (operators: {_OPERATORS}; text values in quotes)"
    return FilterError(msg, src.column(offset), src.original)


def _col(node: ast.AST, src: _Source) -> int:
    byte_offset = getattr(node, "col_offset", 0)
    chars = len(src.parsed.encode()[:byte_offset].decode(errors="ignore"))
    return src.column(chars)


def _check(node: ast.AST, src: _Source, parents: Mapping[int, ast.AST]) -> None:
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise FilterError(f"{_SYMBOLS.get(type(op).__name__, type(op).__name__)} is not allowed in a filter "
                                  f"(operators: {_OPERATORS})", _col(node, src), src.original)  # fmt: skip
        return
    if not isinstance(node, _ALLOWED):
        kind = _SYMBOLS.get(type(node).__name__, type(node).__name__)
        raise FilterError(f"{kind} is not allowed in a filter (operators: {_OPERATORS})", _col(node, src),
                          src.original)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not isinstance(node.operand, ast.Constant):
        raise FilterError("unary minus only applies to numbers", _col(node, src), src.original)
    if isinstance(node, ast.Name) and node.id not in FIELD_NAMES and node.id not in _CONSTANTS:
        raise _unknown_name(node, src, parents)


def _unknown_name(node: ast.Name, src: _Source, parents: Mapping[int, ast.AST]) -> FilterError:
    parent = parents.get(id(node))
    is_value = isinstance(parent, ast.List | ast.Tuple) or (
        isinstance(parent, ast.Compare)
        and any(isinstance(x, ast.Name) and x.id in FIELD_NAMES for x in (parent.left, *parent.comparators))
    )
    if is_value:
        return FilterError(f"{node.id} is not a field; did you mean \"{node.id}\"? (text values need quotes)",
                           _col(node, src), src.original)
    close = difflib.get_close_matches(node.id, sorted(FIELD_NAMES), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return FilterError(f"unknown field {node.id!r}; {hint}valid fields are listed below", _col(node, src),
                       src.original, "valid fields (type, example):\n" + fields_text("  "))


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare,
    ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple, *_COMPARE,
)


def _eval(node: ast.expr, attrs: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, attrs) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, attrs)
        return (not operand) if isinstance(node.op, ast.Not) else -operand
    if isinstance(node, ast.Compare):
        left = _eval(node.left, attrs)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, attrs)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        return attrs.get(node.id)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, attrs) for e in node.elts]
    raise FilterError(f"not allowed in a filter: {type(node).__name__}")  # pragma: no cover - _check guards
