"""Listing tables that never cut the column people copy (endpoint names, rollout ids, class names).

Copyable columns are ``no_wrap`` with a minimum width of their longest cell; every other column folds onto more
lines when the terminal is narrow (80 columns included) instead of ending in ``…``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from rich import box
from rich.table import Table


def listing(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, keep: Iterable[str] = (),
            title: str | None = None, right: Iterable[str] = ()) -> Table:
    """A table of ``rows``; columns named in ``keep`` are never truncated or wrapped."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    keep, right = set(keep), set(right)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, name in enumerate(columns):
        justify: Literal["left", "right"] = "right" if name in right else "left"
        if name in keep:
            width = max([len(name), *(len(r[i]) for r in cells)])
            table.add_column(name, no_wrap=True, min_width=width, justify=justify)
        else:
            table.add_column(name, overflow="fold", justify=justify)
    for row in cells:
        table.add_row(*row)
    return table
