"""Progress bars that suit who is watching.

A person in JupyterLab gets tqdm's live widget. Headless (papermill, CI) a widget is frozen
into the record as whatever it showed when saved ("0%"), which at 2 a.m. reads as a stalled
upload; there the bar is plain text on stdout instead, and its final state (100%, the time
taken and the rate) is what the executed notebook and its HTML keep.
"""

from __future__ import annotations

import sys

from .notebook import kernel_allows_input


def progress_bar(iterable=None, **kwargs):
    """``tqdm`` for a person, a plain text bar for the record. Takes tqdm's arguments."""
    if kernel_allows_input():
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    from tqdm import tqdm

    # Few updates: the record keeps the final line, not a thousand carriage-return redraws.
    kwargs.setdefault("mininterval", 5.0)
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("ascii", True)
    return tqdm(iterable, **kwargs)
