"""Look before you change: every stage turns (site, current state) into a Plan of Steps.

A Step is one row of the table a person reads before anything happens: the object, what the
site wants, what was found, and the action (create, change, ok, conflict). ``Plan.apply``
runs only when asked, refuses to start while any conflict or error finding exists, and runs
the steps in order; a step that fails is named in the error. A rerun after apply plans only
``ok`` rows, so applying it changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

from .errors import ConflictError, TkgsError
from .findings import Finding, raise_for_errors

log = logging.getLogger(__name__)

Action = Literal["create", "change", "ok", "conflict"]


@dataclass
class Step:
    object: str  # what it is about, e.g. "port group tkgs-workload"
    desired: str
    found: str
    action: Action
    run: Optional[Callable[[], object]] = field(default=None, repr=False, compare=False)
    why: str = ""  # for a conflict: what is wrong and what to do

    def __post_init__(self) -> None:
        if self.action in ("create", "change") and self.run is None:
            raise ValueError(f"step {self.object!r} would {self.action} but has nothing to run")


@dataclass
class Plan:
    stage: str
    steps: list[Step] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def extend(self, other: "Plan") -> "Plan":
        self.steps += other.steps
        self.findings += other.findings
        return self

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action in ("create", "change")]

    @property
    def conflicts(self) -> list[Step]:
        return [s for s in self.steps if s.action == "conflict"]

    @property
    def is_noop(self) -> bool:
        return not self.changes and not self.conflicts

    def table(self):
        """One row per object: what the site wants, what was found, and the action."""
        from .tables import Table

        rows = [{"object": s.object, "desired": s.desired, "found": s.found, "action": s.action,
                 "note": s.why} for s in self.steps]
        return Table(rows, ["object", "desired", "found", "action", "note"],
                     empty=f"{self.stage}: nothing to plan (the site asks for no object here).")

    def check(self) -> None:
        """Raise when the plan must not be applied: any conflict or error finding."""
        if self.conflicts:
            lines = "\n".join(f"  - {s.object}: {s.why or f'found {s.found}, wanted {s.desired}'}"
                              for s in self.conflicts)
            raise ConflictError(f"{self.stage}: {len(self.conflicts)} conflict(s); nothing was changed.\n{lines}")
        raise_for_errors(self.findings, what=self.stage)

    def apply(self, progress: bool = True) -> list[Step]:
        """Run every create/change step in order, after check(). Returns the steps that ran."""
        self.check()
        todo = self.changes
        if not todo:
            log.info("%s: nothing to change", self.stage)
            return []
        from .progress import progress_bar

        done: list[Step] = []
        for step in progress_bar(todo, desc=self.stage, unit="step", disable=not progress):
            log.info("%s: %s %s", self.stage, step.action, step.object)
            try:
                step.run()
            except TkgsError as exc:  # name the object and what already ran; keep the class and fields
                named = exc.message if exc.message.startswith(step.object) else f"{step.object}: {exc.message}"
                raise exc.reworded(f"{named}{_already_done(done)}") from exc
            except Exception as exc:  # a vSphere fault: name the object, keep the cause
                raise TkgsError(f"{self.stage}: {step.action} {step.object} failed: {exc}"
                                f"{_already_done(done)}") from exc
            done.append(step)
        return done


def _already_done(done: list[Step]) -> str:
    """What a failed apply had already changed, so a person knows where vCenter stands (a rerun
    plans those rows ok and carries on from the failed one)."""
    if not done:
        return " Nothing had been changed."
    return " Already done before it: " + "; ".join(f"{s.action} {s.object}" for s in done) + \
        ". Rerun to carry on: those rows will show ok."

