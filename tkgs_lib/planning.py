"""Look before you change: a stage turns (site, facts) into a Plan of Steps, then applies it when asked.

A Step is one row of the table a person reads before anything happens: the object, what the
site wants, what was found, and the action, made by the constructor that says what it is:
``Step.ok``, ``Step.create``, ``Step.change``, ``Step.wait`` (another system is already making the
object what the site wants: the step waits for it and sends nothing) or ``Step.conflict`` (with its
reason), as ``Finding.error``/``Finding.warning`` say what a finding is; a plan that removes what a run
made (the destroy stage) has ``Step.delete``, ``Step.keep`` (with why it stays) and ``Step.gone``.
``Plan.apply`` runs only when asked, refuses to start while any conflict or error finding exists, and
runs the steps in order; a step that fails is named in the error with what had already been done. A
rerun after apply plans only ``ok`` rows, so applying it changes nothing.

A plan made from values alone (no connection, as in the planners' tests) reads like any other;
its steps' operations are :class:`ValuesOnly`, which refuse to run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

from . import effects
from .errors import ConflictError, TkgsError
from .findings import Finding, findings_table, raise_for_errors

log = logging.getLogger(__name__)

__all__ = ["Action", "CHANGING", "Step", "Plan", "ValuesOnly", "VALUES_ONLY", "PendingId"]

Action = Literal["create", "change", "delete", "wait", "ok", "keep", "gone", "conflict"]
CHANGING = ("create", "change", "delete")  # the actions that send something
RUNS = (*CHANGING, "wait")  # the actions whose step runs when the plan is applied


@dataclass
class Step:
    object: str  # what it is about, e.g. "port group tkgs-workload"
    desired: str
    found: str
    action: Action
    run: Optional[Callable[[], object]] = field(default=None, repr=False, compare=False)
    why: str = ""  # a conflict's reason and what to do; a change's reason

    def __post_init__(self) -> None:
        if self.action in RUNS and self.run is None:
            raise ValueError(f"step {self.object!r} would {self.action} but has nothing to run")

    @classmethod
    def ok(cls, obj: str, desired: str, found: str) -> "Step":
        """The object is as the site wants it: nothing to do."""
        return cls(obj, desired, found, "ok")

    @classmethod
    def create(cls, obj: str, desired: str, run: Callable[[], object], found: str = "missing") -> "Step":
        """The object is missing; ``run`` makes it."""
        return cls(obj, desired, found, "create", run=run)

    @classmethod
    def change(cls, obj: str, desired: str, found: str, run: Callable[[], object], why: str) -> "Step":
        """The object exists but differs; ``run`` changes it, for the reason ``why``."""
        return cls(obj, desired, found, "change", run=run, why=why)

    @classmethod
    def wait(cls, obj: str, desired: str, found: str, run: Callable[[], object], why: str) -> "Step":
        """Another system is already making the object what the site wants (vCenter configuring what an
        earlier run asked for); ``run`` waits until it has, and sends nothing."""
        return cls(obj, desired, found, "wait", run=run, why=why)

    @classmethod
    def delete(cls, obj: str, found: str, run: Callable[[], object], why: str = "made by this run") -> "Step":
        """The object is one this run made; ``run`` removes it."""
        return cls(obj, "removed", found, "delete", run=run, why=why)

    @classmethod
    def keep(cls, obj: str, found: str, why: str) -> "Step":
        """The object stays, for the reason ``why`` (found, not made by this run; in use by ...). Nothing runs."""
        return cls(obj, "kept", found, "keep", why=why)

    @classmethod
    def gone(cls, obj: str, found: str = "gone") -> "Step":
        """The object this run made is no longer there: nothing to remove."""
        return cls(obj, "removed", found, "gone")

    @classmethod
    def conflict(cls, obj: str, desired: str, found: str, why: str) -> "Step":
        """What exists contradicts the site; ``why`` says what is wrong and what to do. Nothing runs."""
        return cls(obj, desired, found, "conflict", why=why)


@dataclass
class Plan:
    title: str  # what the plan covers: a stage's title, or one part of it ("port groups")
    steps: list[Step] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # Told before the first step runs, a change or a wait (the stage run that made the plan: what it last read
    # is then stale).
    before_changes: Optional[Callable[[], None]] = field(default=None, repr=False, compare=False)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def extend(self, other: "Plan") -> "Plan":
        self.steps += other.steps
        self.findings += other.findings
        return self

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action in CHANGING]

    @property
    def waits(self) -> list[Step]:
        return [s for s in self.steps if s.action == "wait"]

    @property
    def conflicts(self) -> list[Step]:
        return [s for s in self.steps if s.action == "conflict"]

    @property
    def is_noop(self) -> bool:
        return not self.changes and not self.waits and not self.conflicts

    def table(self):
        """One row per object: what the site wants, what was found, and the action."""
        from .display.tables import Table

        rows = [{"object": s.object, "desired": s.desired, "found": s.found, "action": s.action,
                 "note": s.why} for s in self.steps]
        return Table(rows, ["object", "desired", "found", "action", "note"],
                     empty=f"{self.title}: nothing to plan (the site asks for no object here).")

    def __repr__(self) -> str:
        return f"{self.table().to_text()}\n\nFindings\n{findings_table(self.findings).to_text()}"

    def _repr_html_(self) -> str:
        """The plan as a person reads it before choosing to apply: its rows, then its findings."""
        return (self.table()._repr_html_() + "<p><b>Findings</b></p>"
                + findings_table(self.findings)._repr_html_())

    def raise_for_blockers(self) -> None:
        """Raise when the plan must not be applied: any conflict or error finding."""
        if self.conflicts:
            lines = "\n".join(f"  - {s.object}: {s.why or f'found {s.found}, wanted {s.desired}'}"
                              for s in self.conflicts)
            raise ConflictError(f"{self.title}: {len(self.conflicts)} conflict(s); nothing was changed.\n{lines}")
        raise_for_errors(self.findings, what=self.title)

    def apply(self, progress: bool = True) -> list[Step]:
        """Run every create, change, delete and wait step in order, after raise_for_blockers(). Returns the steps
        that ran (a wait's sends nothing, so the ledger holds nothing for it)."""
        self.raise_for_blockers()
        todo = [s for s in self.steps if s.action in RUNS]
        if not todo:
            log.info("%s: nothing to change", self.title)
            return []
        from .display.progress import progress_bar

        if self.before_changes is not None:
            self.before_changes()
        ledger = effects.current()
        mark = ledger.mark()
        done: list[Step] = []
        for step in progress_bar(todo, desc=self.title, unit="step", disable=not progress):
            row = f"{step.action} {step.object}"
            log.info("%s: %s", self.title, row)
            try:
                with ledger.step(row):
                    step.run()
            except TkgsError as exc:  # name the object and say what was changed; keep the class and fields
                named = exc.message if exc.message.startswith(step.object) else f"{step.object}: {exc.message}"
                raise exc.reworded(f"{named.rstrip('.')}. {_what_changed(ledger.since(mark), exc.effect)}"
                                   f"{_left(todo[len(done):])}") from exc
            except Exception as exc:  # a fault no boundary translated: name the object, keep the cause
                said = str(exc) or type(exc).__name__  # a bare EOFError says nothing
                raise TkgsError(f"{self.title}: {row} failed: {said}. "
                                f"{_what_changed(ledger.since(mark))}{_left(todo[len(done):])}") from exc
            done.append(step)
        return done


def _what_changed(sent: list, found: str = "") -> str:
    """What a failed apply had changed, from the ledger (what was sent and what came back), and what a
    read after the failure found, when one was made."""
    said = effects.account(sent)
    if found:
        said += f" Read afterwards: {found.rstrip('.')}."
    return said


def _left(rest: list[Step]) -> str:
    """What a failed removal leaves: the objects of the delete rows not done (the failed one first)."""
    left = [s.object for s in rest if s.action == "delete"]
    return f" Left: {'; '.join(left)}." if left else ""


class ValuesOnly:
    """Stands in for a part's operations when its plan was made from values only (no connection).

    Such a plan reads and compares like any other; running one of its steps refuses, naming
    the function that plans with a connection. Only public names answer: a probe for a private or
    special name (``_repr_html_``, ``__deepcopy__``...) gets AttributeError, as from any object."""

    def __init__(self, planner: str) -> None:
        self._planner = planner

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def refuse(*args, **kwargs):
            raise TkgsError(f"this plan was made from values only; plan with {self._planner} to apply it.")
        return refuse


# What a planner's operations are when it is given none: a plan from values (its tests, a dry run
# with no connection) reads like any other, and refuses to run.
VALUES_ONLY = ValuesOnly("StageRun.plan() on a run connected to vCenter (or the appliance)")


class PendingId:
    """The id of one object a plan needs: known now when the object exists, or set by the step that
    creates it, for the later steps that use it.

    ``tag_id.set(ops.create_tag(...))`` in the creating step; ``tag_id.get()`` in a later one."""

    def __init__(self, what: str, value: Optional[str] = None) -> None:
        self.what, self.value = what, value

    def __repr__(self) -> str:
        return f"<PendingId {self.what}: {self.value or 'not known yet'}>"

    def set(self, value: str) -> str:
        self.value = value
        return value

    def get(self) -> str:
        if not self.value:
            raise TkgsError(f"the id of {self.what} is not known: the step that creates it has not run.")
        return self.value
