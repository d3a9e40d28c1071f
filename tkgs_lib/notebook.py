"""Helpers for the notebooks' first cell: friendly errors and knowing who is at the keyboard."""

from __future__ import annotations

import sys

from .errors import TkgsError


def kernel_allows_input() -> bool:
    """True when a person runs the notebook (JupyterLab), False under papermill or nbclient.

    Headless runners execute with ``allow_stdin=False``; a person's frontend allows input.
    Outside a kernel this falls back to whether standard input is a terminal."""
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return sys.stdin is not None and sys.stdin.isatty()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return sys.stdin is not None and sys.stdin.isatty()
    return bool(getattr(kernel, "_allow_stdin", False))


def _show_tkgs_error(shell, etype, value, tb, tb_offset=None):
    # A user's mistake reads as one sentence, not a traceback. The cell still fails, so a
    # headless run (papermill) stops here and reports the same sentence.
    return [f"{etype.__name__}: {value}"]


def setup() -> None:
    """Make TkgsError print as its sentence in this kernel (other exceptions keep tracebacks)."""
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        return
    shell.set_custom_exc((TkgsError,), _show_tkgs_error)


def show_parameter_form(namespace, *names: str) -> None:
    """Show the widget form for these parameters when a person runs the notebook; headless, nothing."""
    if not kernel_allows_input():
        return
    from IPython.display import display

    from .widgets import parameter_form

    display(parameter_form(namespace, *names))
