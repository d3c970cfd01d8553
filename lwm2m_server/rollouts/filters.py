"""Target filters for rollouts: a small, safe expression language over device attributes.

Operators write filters such as ``accelerator == "none" and ram_total >= 131072`` or
``endpoint in ["dev-1", "dev-2"]``. The text is parsed with :mod:`ast` and only a whitelist of
node types is accepted (comparisons, ``and``/``or``/``not``, names, literals, lists), so a filter can
never call a function or reach an attribute. Evaluation is a pure function of a mapping.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_FILTER_LENGTH = 2000
MAX_NODES = 200

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


class FilterError(ValueError):
    """A filter that cannot be parsed or uses something the language does not allow."""


@dataclass(frozen=True)
class DeviceFilter:
    """A parsed filter; ``matches(attrs)`` evaluates it against one device's attributes."""

    text: str
    _tree: ast.Expression

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n.id for n in ast.walk(self._tree) if isinstance(n, ast.Name))

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        try:
            return bool(_eval(self._tree.body, attributes))
        except TypeError:
            # e.g. comparing None (hardware unknown) with an int: such a device does not match.
            return False


def parse_filter(text: str) -> DeviceFilter:
    """Parse ``text``; an empty filter matches every device."""
    text = text.strip()
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter longer than {MAX_FILTER_LENGTH} characters")
    if not text:
        text = "True"
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise FilterError(f"invalid filter syntax at column {exc.offset or 0}: {exc.msg}") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise FilterError(f"filter too complex (more than {MAX_NODES} nodes)")
    for node in nodes:
        _check(node)
    return DeviceFilter(text, tree)


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare,
    ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple, *_COMPARE,
)


def _check(node: ast.AST) -> None:
    if not isinstance(node, _ALLOWED):
        raise FilterError(f"not allowed in a filter: {type(node).__name__}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not isinstance(node.operand, ast.Constant):
        raise FilterError("unary minus only applies to numbers")


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
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        return attrs.get(node.id)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, attrs) for e in node.elts]
    raise FilterError(f"not allowed in a filter: {type(node).__name__}")  # pragma: no cover - _check guards
