"""A table as plain text for a terminal or a log, from rows of plain values, without pandas.

:class:`~tkgs_lib.display.tables.Table` renders its text through :func:`format_cells`; ``validate`` uses
:func:`text_table` on the plan's rows directly, so checking a site never pays for importing pandas
(most of what one ``validate`` used to cost).
"""

from __future__ import annotations

import math
import numbers
import textwrap
from typing import Iterable, Sequence

__all__ = ["cell_text", "format_cells", "text_table"]


def cell_text(value: object) -> str:
    """A cell as a person reads it: nothing for a missing value, thousands separated, yes/no."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    return str(value)


def format_cells(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool],
                 width: int = 100) -> str:
    """Cells (already text) in columns at most ``width`` wide: the widest column shrinks and wraps
    until the table fits; numeric columns are right-aligned."""
    cells = [list(header)] + [list(row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    while sum(widths) + 2 * (len(widths) - 1) > width and max(widths) > 12:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    lines = []
    for row in cells:
        wrapped = [textwrap.wrap(cell, w, break_on_hyphens=False) or [""] for cell, w in zip(row, widths)]
        for depth in range(max(len(w) for w in wrapped)):
            parts = [(w[depth] if depth < len(w) else "").rjust(n) if num else
                     (w[depth] if depth < len(w) else "").ljust(n)
                     for w, n, num in zip(wrapped, widths, numeric)]
            lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def text_table(rows: Iterable[dict], columns: Sequence[str], *, empty: str = "Nothing to show.",
               width: int = 100) -> str:
    """``rows`` (mappings) shown in ``columns``; ``empty`` when there are none. A column is numeric
    (right-aligned) when every value it has is a number."""
    rows = list(rows)
    if not rows:
        return empty
    numeric = [any(r.get(c) is not None for r in rows) and all(r.get(c) is None or _is_number(r.get(c)) for r in rows)
               for c in columns]
    return format_cells(columns, [[cell_text(r.get(c)) for c in columns] for r in rows], numeric, width)
