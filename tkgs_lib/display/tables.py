"""Tables, and the sentences that close a stage, as a person reads them, in a notebook, its HTML record
and a terminal.

Every report of tkgs_lib is a :class:`Table`: a pandas DataFrame with the way it is shown fixed
once, here, so every stage looks the same: no 0..n index column, text left-aligned, ``yes``/``no``
rather than ``True``/``False``, and a sentence saying why a table is empty instead of a bare
header row. The DataFrame stays at hand (``table.frame``) for code and tests.
"""

from __future__ import annotations

import html
import numbers
import re
from typing import Iterable, Optional, Sequence

import pandas as pd

from .text_table import format_cells

__all__ = ["Sentence", "Table", "yes_no"]


def yes_no(value: object) -> object:
    """``yes``/``no`` for a boolean, anything else as it is."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


LONG_WORD = 24  # characters: longer than the widest word of a column of prose


def _has_long_word(value) -> bool:
    return isinstance(value, str) and any(len(word) > LONG_WORD for word in value.split())


def _cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


class Table:
    """A titled-or-not table of rows; ``empty`` says why there are none."""

    def __init__(self, rows: Iterable[dict] | pd.DataFrame, columns: Optional[Sequence[str]] = None, *,
                 empty: str = "Nothing to show.") -> None:
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=columns)
        if columns is not None:
            frame = frame[list(columns)]
        frame = frame.copy()
        for column in frame.columns:  # booleans read as yes/no; other values stay as they are
            if frame[column].dtype in (bool, object):
                frame[column] = frame[column].map(yes_no).astype(object)
        self.frame = frame
        self.empty = empty

    # --- reading it from code --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, column: str) -> pd.Series:
        return self.frame[column]

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def records(self) -> list[dict]:
        return self.frame.to_dict("records")

    def to_csv(self, path) -> None:
        self.frame.to_csv(path, index=False)

    # --- showing it ------------------------------------------------------------------------------

    def _text_columns(self) -> list[str]:
        return [c for c in self.frame.columns if not pd.api.types.is_numeric_dtype(self.frame[c])]

    def _repr_html_(self) -> str:
        if self.frame.empty:
            return f"<p><em>{html.escape(self.empty)}</em></p>"
        styler = self.frame.style.hide(axis="index")
        text = self._text_columns()
        if text:
            styler = styler.set_properties(subset=text, **{"text-align": "left", "white-space": "pre-wrap"})
        # A cell holding a word longer than a column should be (a fingerprint, a path, a base64 run: no
        # place to break) may break inside it, so the table fits the page instead of running off its
        # right edge; words of ordinary length are never cut.
        styler = styler.map(lambda v: "overflow-wrap: anywhere" if _has_long_word(v) else "")
        styler = styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
        styler = styler.set_table_attributes('style="max-width: 100%"')
        return styler.format(thousands=",", precision=0, na_rep="").to_html()

    def to_text(self, columns: Optional[Sequence[str]] = None, width: int = 100) -> str:
        """Plain text for a terminal or a log, at most ``width`` columns wide: long cells are wrapped."""
        if self.frame.empty:
            return self.empty
        frame = self.frame[list(columns)] if columns else self.frame
        rows = [[_cell_text(v) for v in row] for row in frame.itertuples(index=False)]
        numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
        return format_cells([str(c) for c in frame.columns], rows, numeric, width)

    def __repr__(self) -> str:
        return self.to_text()


class Sentence(str):
    """What a stage concludes: a str for code and tests, shown in a notebook as text (Markdown, its
    special characters escaped), not as a quoted Python string."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", str(self))
