"""Progress bars that suit who is watching.

A person in JupyterLab gets tqdm's live widget. Headless (papermill, CI) nobody watches the
bar move, and whatever it printed stays in the executed notebook: a widget frozen at "0%", or a
line per redraw with the cursor-up escapes of nested bars. There the bar prints nothing while it
runs and one plain line when it ends: the finished bar (100%, the time taken and the rate), or
how far it got when the work failed.
"""

from __future__ import annotations

import io
import sys

from tqdm import tqdm

from .notebook import kernel_allows_input

__all__ = ["progress_bar", "RecordBar"]


class RecordBar(tqdm):
    """A tqdm that stays silent while it runs and prints its final state once, when closed."""

    def __init__(self, *args, **kwargs) -> None:
        self._record_to = kwargs.pop("file", None) or sys.stdout
        kwargs.update(file=io.StringIO(), ascii=True, mininterval=float("inf"), position=0, leave=False)
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        if self.disable or getattr(self, "_recorded", False):
            return super().close()
        self._recorded = True
        line = self.format_meter(**{**self.format_dict, "ncols": 80})
        super().close()
        print(line, file=self._record_to, flush=True)


def progress_bar(iterable=None, **kwargs):
    """``tqdm`` for a person, a :class:`RecordBar` for the record. Takes tqdm's arguments."""
    if kernel_allows_input():
        from tqdm.auto import tqdm as live

        return live(iterable, **kwargs)
    return RecordBar(iterable, **kwargs)
