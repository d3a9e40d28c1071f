"""The guest's children: PID 1 reaps every orphan, and a thread waiting for its own command's exit
status must not lose it to that reaper.

The guest is PID 1 of the appliance's PID namespace, so every orphan becomes its child and must be
reaped (``waitpid(-1)``). That same call would also reap a command a Data Plane API thread runs
(``haproxy -c``), and Python then reports exit status 0 for a command that failed. One lock keeps
the two apart: commands run under it, and the reaper takes it too.
"""

from __future__ import annotations

import os
import subprocess
import threading

__all__ = ["run", "reap_orphans", "LOCK"]

LOCK = threading.Lock()


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, capture_output=True, text=True, ...)``, its exit status safe from the reaper."""
    with LOCK:
        return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def reap_orphans() -> None:
    """Reap every child that has ended, but never while a command's exit status is awaited."""
    with LOCK:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
