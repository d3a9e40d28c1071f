"""Waiting for something another system does: one loop for every wait in tkgs_lib.

vCenter's tasks, an import lease, an upload session, a VM's first boot and a Supervisor's
configuration are all the same shape: read a state, judge it (done, keep waiting, or failed), and
give up at a deadline with the last state in the sentence. :func:`wait_until` is that loop;
each caller keeps only what it knows: how to read, how to judge, what to say when time runs out.

The clock and the sleep are parameters, so a judge's rules (an ERROR that may pass, a timeout)
are tested without waiting.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Callable, Optional, TypeVar

__all__ = ["wait_until", "Clock"]

T = TypeVar("T")


class Clock:
    """Time as the loop reads it: real by default; a test's own ``now``/``sleep`` otherwise."""

    def __init__(self, now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.now, self.sleep = now, sleep


REAL = Clock()


def wait_until(read: Callable[[], T], done: Callable[[T], bool], *, timeout: Optional[float],
               timed_out: Callable[[T, float], Exception], interval: float = 0.2, max_interval: Optional[float] = None,
               on_poll: Optional[Callable[[T, float], None]] = None, progress: str = "", show_progress: bool = True,
               clock: Clock = REAL) -> T:
    """``read()`` until ``done(value)``; return that value.

    ``done`` may raise to end the wait with its own error (a failed task). ``on_poll(value, elapsed)``
    sees every value read (to print what changed). Past ``timeout`` seconds (None: never),
    ``timed_out(last value, elapsed)`` is raised. The interval grows by half each round up to
    ``max_interval`` (default: ``interval``, a steady poll). With ``progress``, a bar of that
    description counts the seconds against the timeout and, done, shows the time it took."""
    from .display.progress import progress_bar

    start = clock.now()
    step, ceiling = interval, max_interval if max_interval is not None else interval
    bar = (progress_bar(total=int(timeout or 0) or None, desc=progress, unit="s", disable=not show_progress)
           if progress else nullcontext())
    with bar:
        while True:
            value = read()
            elapsed = clock.now() - start
            if on_poll is not None:
                on_poll(value, elapsed)
            if done(value):
                if progress:  # the record keeps a finished bar with the time it took, not "n of the timeout"
                    bar.total = max(1, int(elapsed))
                    bar.update(bar.total - bar.n)
                return value
            if timeout is not None and elapsed >= timeout:
                raise timed_out(value, elapsed)
            if progress:
                bar.update(max(0, int(elapsed) - bar.n))
            # The last read falls on the deadline itself, never a whole interval past it.
            clock.sleep(step if timeout is None else min(step, timeout - elapsed))
            step = min(step * 1.5, ceiling)
