"""Writing a file whole: a reader, or a process cut short, sees the old file or the new, never half.

The run folder is the record a person hands on; a stage stopped by a signal must not leave a
truncated notebook, HTML page or index there.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_whole"]


def write_text_whole(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to a scratch file beside ``path``, then rename it over ``path`` (atomic on POSIX)."""
    path = Path(path)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(scratch, "w", encoding=encoding) as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    return path
