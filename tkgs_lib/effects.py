"""The ledger of effects: every request that may change something, entered before it leaves the
process and closed with what came back.

What a stage or a run says it changed comes from here, never from which code path ran. Each entry
is closed with one of:

    done       the other side answered that it did it
    refused    it answered that it did not (a fault, an HTTP error, a command that exited non-zero)
    not sent   the request never left (no connection could be made)
    unknown    it left and no answer came (a connection lost, a timeout, a process stopped): it may
               have happened, and a rerun without apply shows whether

An entry never closed (the process stopped between sending and hearing) reads as unknown.

The transports enter their own requests at their one boundary each (a SOAP call that is not a
read, a REST request that is not a GET, a command run on the appliance to change it); a plan's
apply says which of its rows each one serves (:meth:`Ledger.step`). A stage's kernel keeps its
ledger in the run folder (``effects.jsonl``, one JSON object a line, each on disk before its
request leaves), so the runner reads it after the stage whatever became of the kernel; a ledger
that cannot be written stops the request before it is sent.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from .errors import TkgsError

__all__ = ["Effect", "Ledger", "EFFECTS_FILE", "DONE", "REFUSED", "NOT_SENT", "UNKNOWN", "SENT", "current",
           "keeping", "keep_for_stage", "account", "changed_anything", "read_effects"]

EFFECTS_FILE = "effects.jsonl"
SENT, DONE, REFUSED, NOT_SENT, UNKNOWN = "sent", "done", "refused", "not sent", "unknown"
_SAID = 300  # characters of what came back kept in an entry


@dataclass
class Effect:
    """One request that may change something, and what became of it."""

    number: int  # its place in the ledger, from 1
    stage: str  # the stage that sent it ("" outside one)
    step: str  # the plan row it serves, as the plan names it ("create port group tkgs-workload"); "" outside a plan
    target: str  # whom it was sent to: "vCenter vc01.example.com:443", "the appliance 10.64.2.10"
    request: str  # what was sent: "POST /api/vcenter/...?action=enable", "CreateDVPortgroup_Task", "`systemctl ...`"
    outcome: str = SENT
    said: str = ""  # what came back when it was not done: the refusal, or why no answer came

    @property
    def may_have_happened(self) -> bool:
        return self.outcome in (SENT, UNKNOWN)

    @property
    def happened(self) -> bool:
        return self.outcome == DONE


class Ledger:
    """The effects of one process: kept in memory, and appended to ``path`` when given.

    :meth:`enter` before a request leaves, then :meth:`close` with what came back."""

    def __init__(self, path: Optional[Path] = None, stage: str = "") -> None:
        self.path = Path(path) if path is not None else None
        self.stage = stage
        self.effects: list[Effect] = []
        self._step = ""
        if self.path is not None:
            self.effects = read_effects(self.path)  # a stage's ledger continues the run's

    def __repr__(self) -> str:
        where = self.path or "memory"
        return f"<Ledger {where}: {len(self.effects)} effect(s)>"

    # --- writing -----------------------------------------------------------------------------------

    def enter(self, target: str, request: str) -> Effect:
        """Enter a request about to leave; it is on disk before this returns (else nothing is sent)."""
        effect = Effect(len(self.effects) + 1, self.stage, self._step, target, request)
        self._append({"enter": asdict(effect)}, f"{request} to {target}")
        self.effects.append(effect)
        return effect

    def close(self, effect: Effect, outcome: str, said: str = "") -> Effect:
        """What came back for ``effect``: DONE, REFUSED, NOT_SENT or UNKNOWN, and in words when not done."""
        effect.outcome, effect.said = outcome, said[:_SAID]
        try:
            self._append({"close": effect.number, "outcome": outcome, "said": effect.said}, "")
        except TkgsError:
            effect.outcome = SENT  # the answer came, the ledger could not keep it: as if it had not
            raise
        return effect

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """The requests entered meanwhile serve the plan row ``name``."""
        before, self._step = self._step, name
        try:
            yield
        finally:
            self._step = before

    def mark(self) -> int:
        """Where the ledger stands now, for :meth:`since`."""
        return len(self.effects)

    def since(self, mark: int) -> list[Effect]:
        return self.effects[mark:]

    def _append(self, record: dict, request: str) -> None:
        if self.path is None:
            return
        line = json.dumps(record, sort_keys=True) + "\n"
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(line)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            what = f"so {request} was not sent" if request else "after an answer came"
            raise TkgsError(f"the ledger of what this run changes ({self.path}) cannot be written "
                            f"({exc.strerror or exc}), {what}: free the disk and run again.") from None


def read_effects(path: Path, stage: Optional[str] = None) -> list[Effect]:
    """The entries of a ledger file, each closed as its last record says (never closed: SENT); only
    ``stage``'s when given. A line cut short by a process that stopped mid-write is skipped."""
    effects: dict[int, Effect] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    for line in lines:
        try:
            record = json.loads(line)
            if "enter" in record:
                effect = Effect(**record["enter"])
                effects[effect.number] = effect
            elif record.get("close") in effects:
                closed = effects[record["close"]]
                closed.outcome, closed.said = record["outcome"], record.get("said", "")
        except (ValueError, TypeError, KeyError):
            continue
    return [e for e in effects.values() if stage is None or e.stage == stage]


# --- the process's ledger ---------------------------------------------------------------------------

_current = Ledger()  # outside a stage (a test, a person's own script): kept in memory only


def current() -> Ledger:
    """The ledger the transports enter their requests in."""
    return _current


@contextlib.contextmanager
def keeping(ledger: Ledger) -> Iterator[Ledger]:
    """Make ``ledger`` the process's ledger meanwhile."""
    global _current
    before, _current = _current, ledger
    try:
        yield ledger
    finally:
        _current = before


def keep_for_stage(folder: Path, stage: str) -> Ledger:
    """From now on this process (a stage's kernel) enters its requests in the run folder's ledger."""
    global _current
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TkgsError(f"the run folder {folder} cannot be made ({exc.strerror or exc}), so nothing can be "
                        f"kept of what this stage would change.") from None
    _current = Ledger(Path(folder) / EFFECTS_FILE, stage)
    return _current


# --- in words ---------------------------------------------------------------------------------------

def changed_anything(effects: Sequence[Effect]) -> bool:
    """Whether any of ``effects`` happened or may have."""
    return any(e.happened or e.may_have_happened for e in effects)


def _rows(effects: Sequence[Effect]) -> list[tuple[str, str, list[Effect]]]:
    """The effects by the plan row they served (in order): (row, outcome of the row, its effects)."""
    rows: dict[str, list[Effect]] = {}
    for effect in effects:
        rows.setdefault(effect.step or f"{effect.request} to {effect.target}", []).append(effect)
    out = []
    for name, group in rows.items():
        if any(e.may_have_happened for e in group):
            outcome = UNKNOWN
        elif any(e.happened for e in group):
            outcome = DONE
        else:
            outcome = REFUSED
        out.append((name, outcome, group))
    return out


DELETE = "delete "  # how a plan's row that removes an object begins ("delete port group tkgs-workload")


def account(effects: Sequence[Effect], *, nothing: str = "Nothing was changed.") -> str:
    """What ``effects`` changed, in sentences: the rows done (a delete row's object as removed), the rows
    that may have been (with the request whose answer never came), or ``nothing``. A refused request
    changed nothing and is not listed."""
    rows = _rows(effects)
    done = [name for name, outcome, _ in rows if outcome == DONE]
    removed = [name.removeprefix(DELETE) for name in done if name.startswith(DELETE)]
    changed = [name for name in done if not name.startswith(DELETE)]
    unsure = []
    for name, outcome, group in rows:
        if outcome == UNKNOWN:
            unsure.append(f"{name} ({'; '.join(_in_words(group))})")
    if not done and not unsure:
        return nothing
    parts = []
    if changed:
        parts.append(f"Changed: {'; '.join(changed)}.")
    if removed:  # a plan's delete rows: what was removed, not "changed"
        parts.append(f"Removed: {'; '.join(removed)}.")
    if unsure:
        parts.append(f"May have changed (rerun without apply to see whether it did): {'; '.join(unsure)}.")
    return " ".join(parts)


_WORDS = {DONE: "done", REFUSED: "refused", NOT_SENT: "not sent", UNKNOWN: "sent, no answer came",
          SENT: "sent, no answer came"}


def _in_words(group: Sequence[Effect]) -> list[str]:
    """Each request of a row, in order, with what came back (a request repeated with one outcome, once)."""
    said: dict[tuple[str, str], str] = {}
    for effect in group:
        where = f" to {effect.target}" if effect.may_have_happened else ""
        said.setdefault((effect.request, effect.outcome), f"{effect.request}{where}: {_WORDS[effect.outcome]}")
    return list(said.values())
