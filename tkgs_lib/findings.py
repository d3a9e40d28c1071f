"""Findings: what a check found, where, and what to write instead."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Literal

from .errors import ValidationFailed

Severity = Literal["error", "warning", "info"]
_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """What is wrong at a field, and what to write or do instead.

    ``suggested`` is the value a fix names for ``path``, worked out for this site, as text: one value,
    or the items that take the place of a list's item (two ranges for one). Written there, it leaves
    no error at ``path`` and brings none elsewhere: a rule suggests only what the plan accepts (see
    :func:`settle_suggestions`). A fix that names a value to write at ``path`` always carries it here;
    an "e.g." in a fix shows a form, and is no value for this site; blocks a fix says to add to another
    field (the load-balancer ranges a virtual IP range lies outside) are named in its words only, and
    are ones that field takes."""

    severity: Severity
    path: str  # the field, e.g. networks.frontend.gateway
    message: str  # what is wrong
    fix: str = ""  # what to write or do instead
    suggested: tuple[str, ...] = ()

    @classmethod
    def error(cls, path: str, message: str, fix: str = "", suggested: tuple[str, ...] = ()) -> "Finding":
        return cls("error", path, message, fix, tuple(suggested))

    @classmethod
    def warning(cls, path: str, message: str, fix: str = "", suggested: tuple[str, ...] = ()) -> "Finding":
        return cls("warning", path, message, fix, tuple(suggested))

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        text = f"{self.severity.upper()} {self.path}: {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text

    def to_dict(self) -> dict:
        return asdict(self)


def settle_suggestions(findings: list[Finding], pending: dict[int, str],
                       also: Iterable[Finding] = ()) -> list[Finding]:
    """``findings`` with each pending suggestion kept or withdrawn. A rule that suggests a value and
    lets the plan go on checking that value as if it were written (the network a CIDR with host bits
    lies in, a range turned the right way round) cannot know yet whether the plan accepts it; it
    leaves the fix to say in words in ``pending`` (by the finding's ``id``). A suggestion whose field
    has another error (of ``findings``, or of ``also``) is refused by the plan: the words replace it."""
    erring: dict[str, int] = {}
    for f in (*findings, *also):
        if f.is_error:
            erring[f.path] = erring.get(f.path, 0) + 1
    return [replace(f, fix=pending[id(f)], suggested=()) if id(f) in pending and erring.get(f.path, 0) > 1 else f
            for f in findings]


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_error]


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then warnings; within each, in the order found (file order)."""
    return sorted(findings, key=lambda f: _ORDER[f.severity])


PER_KIND = 10  # findings of one kind shown before the rest are counted


def _kind(finding: Finding) -> tuple[str, str]:
    """Findings of one rule read alike but for their values: addresses, numbers, names, fields."""
    shape = re.sub(r"'[^']*'|\[\d+\]|\d[\d.,:/-]*", "#", finding.message)
    return finding.severity, re.sub(r" and # other ranges?", "", shape)


def capped(findings: Iterable[Finding], per_kind: int = PER_KIND) -> tuple[list[Finding], int]:
    """The findings to show (at most ``per_kind`` of each kind) and how many more there are."""
    shown, seen, hidden = [], {}, 0
    for f in findings:
        kind = _kind(f)
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= per_kind:
            shown.append(f)
        else:
            hidden += 1
    return shown, hidden


def raise_for_errors(findings: Iterable[Finding], what: str = "The site") -> None:
    """Raise ValidationFailed, listing the errors (at most ten of a kind), when any finding is an error."""
    found = errors(findings)
    if found:
        shown, hidden = capped(found)
        lines = "\n".join(f"  - {f}" for f in shown) + (f"\n  ... and {hidden:,} more like these." if hidden else "")
        plural = "s" if len(found) > 1 else ""
        raise ValidationFailed(f"{what} has {len(found)} error{plural}; nothing was changed.\n{lines}", found)


def findings_table(findings: Iterable[Finding]):
    """The findings as a table (severity, field, problem, fix), errors first; at most ten of a kind,
    then one row counting the rest."""
    from .display.tables import Table

    shown, hidden = capped(sort_findings(findings))
    rows = [{"severity": f.severity, "field": f.path, "problem": f.message, "fix": f.fix} for f in shown]
    if hidden:
        rows.append({"severity": "", "field": "", "problem": f"... and {hidden:,} more findings like those above.",
                     "fix": ""})
    return Table(rows, ["severity", "field", "problem", "fix"], empty="No findings: every check passed.")
