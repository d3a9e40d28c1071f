"""Who is at the keyboard: a person in JupyterLab, or a headless runner (papermill, CI)."""

from __future__ import annotations

import sys


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
