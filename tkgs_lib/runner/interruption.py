"""How a run stops: Ctrl-C, SIGTERM (a CI timeout) and SIGHUP (a closed terminal), all the same way.

:func:`install` (the command line does it first thing for ``run`` and ``demo``) makes the first
signal interrupt the work under way (a stage's notebook: ``KeyboardInterrupt``), except inside a
:func:`shielded` section: the work that keeps a record (a notebook written, scrubbed, marked and
exported, the run folder scanned, an index page written, a simulator's files removed) always runs
to its end, and a signal that arrives there is acknowledged and takes effect when the section ends.
Once the run is stopping, further signals are acknowledged too (its kernel is being stopped, its
records kept); the third ends the process at once, saying what it leaves undone, after the
emergency steps registered with :func:`on_give_up` (killing the stage's kernel).

For tests, ``TKGS_TEST_SIGNAL_AT=<point>[#<n>][=<SIGNAL>][,...]`` makes the process send itself the
signal (SIGTERM by default) when it reaches the :func:`checkpoint` of that name (the n-th time, the
first by default): the moments a signal must be survived, reached deterministically. Nothing sets it
in use.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Callable, Iterator, Optional

__all__ = ["install", "shielded", "take_held", "checkpoint", "on_give_up", "stopping", "STOPPING_SIGNALS",
           "GIVE_UP_AFTER"]

STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GIVE_UP_AFTER = 3  # the signal that ends the process at once


class _State:
    def __init__(self) -> None:
        self.received: list[str] = []  # the names of the signals received, in order
        self.raised = False  # the first has been turned into KeyboardInterrupt: the run is stopping
        self.deferred = False  # one arrived inside a shield and waits for its end
        self.held: Optional[str] = None  # one arrived inside a holding shield: for take_held()
        self.shields: list[str] = []  # what the shielded sections under way keep
        self.holding = 0  # how many of them hold their signal rather than raise it
        self.give_up: list[Callable[[], None]] = []
        self.early: list[str] = []  # received before install() (see cli.py's early handler)
        self.reached: dict[str, int] = {}  # checkpoint → how many times reached


_state = _State()


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP as this module says (idempotent)."""
    for signum in STOPPING_SIGNALS:
        signal.signal(signum, _handler)


def stopping() -> Optional[str]:
    """The name of the first signal received, when the process is stopping (None otherwise)."""
    return _state.received[0] if _state.received else None


def _say(text: str) -> None:
    try:
        os.write(2, (text + "\n").encode())  # never print(): a signal may land inside a print
    except OSError:
        pass


def _handler(signum, _frame) -> None:
    name = signal.Signals(signum).name
    _state.received.append(name)
    if len(_state.received) >= GIVE_UP_AFTER:
        _end_at_once(name)
    if _state.shields:
        if _state.holding:
            _state.held = _state.held or name
        else:
            _state.deferred = True
        _say(f"{name}: the run stops once it has kept {_state.shields[-1]}"
             + (" (another signal ends it at once, leaving that undone)." if len(_state.received) ==
                GIVE_UP_AFTER - 1 else "."))
        return
    if _state.raised:
        _say(f"{name}: the run is stopping already" + (" (another signal ends it at once)." if len(_state.received)
                                                       == GIVE_UP_AFTER - 1 else "."))
        return
    _state.raised = True
    raise KeyboardInterrupt(name)


def _end_at_once(name: str) -> None:
    undone = ", ".join(reversed(_state.shields)) or "the run's clean-up"
    _say(f"{name} a third time: stopping at once; left undone: {undone}. Rerun the stage: a rerun plans only "
         f"what is left.")
    for step in reversed(_state.give_up):
        try:
            step()
        except Exception:  # noqa: BLE001 (the process ends in any case)
            pass
    os._exit(130)


@contextlib.contextmanager
def shielded(what: str, last: bool = False, hold: bool = False) -> Iterator[None]:
    """Run the block to its end whatever signal arrives; one that arrives meanwhile takes effect (as
    KeyboardInterrupt) when the outermost shield ends, unless the run is already stopping or the block
    is the ``last`` of the work (a clean-up after which nothing is left to stop). With ``hold`` it is
    kept for :func:`take_held` instead (inside a library that would swallow the KeyboardInterrupt)."""
    _state.shields.append(what)
    _state.holding += hold
    try:
        yield
    finally:
        _state.shields.pop()
        _state.holding -= hold
    if not _state.shields and _state.deferred:
        _state.deferred = False
        if not _state.raised and not last:
            _state.raised = True
            raise KeyboardInterrupt(_state.received[-1])


def take_held() -> Optional[str]:
    """The signal a ``hold`` shield kept (now taken: the run is stopping), or None."""
    held, _state.held = _state.held, None
    if held is None or _state.raised:
        return None
    _state.raised = True
    return held


@contextlib.contextmanager
def on_give_up(step: Callable[[], None]) -> Iterator[None]:
    """While the block runs, ``step`` is what a third signal does before the process ends (kill a kernel)."""
    _state.give_up.append(step)
    try:
        yield
    finally:
        _state.give_up.remove(step)


def checkpoint(point: str) -> None:
    """A moment a signal must be survived: under ``TKGS_TEST_SIGNAL_AT`` the process signals itself here."""
    wanted = os.environ.get("TKGS_TEST_SIGNAL_AT", "")
    if not wanted:
        return
    _state.reached[point] = reached = _state.reached.get(point, 0) + 1
    for item in wanted.split(","):
        where, _, sig = item.strip().partition("=")
        name, _, nth = where.partition("#")
        if name == point and reached == (int(nth) if nth.isdigit() else 1):
            os.kill(os.getpid(), getattr(signal, sig or "SIGTERM", signal.SIGTERM))


def early_handler(signum, _frame) -> None:
    """Before :func:`install`: keep a signal that arrives while the command line starts (never a
    traceback, never a silent death); the command line then stops saying nothing had started."""
    _state.early.append(signal.Signals(signum).name)


def early_signal() -> Optional[str]:
    return _state.early[0] if _state.early else None
