"""``tkgs-runbook validate``: site files checked at the desk, before anything is touched.

One file shows its tables (subnet summary, allocations, the anyip-routes.cfg preview), its findings
and a summary line; many files, in one process, show one summary line each (with a site's errors
below it) and a total. The exit status is the worst of them: 0 ok, 1 errors, 2 unreadable.

Only what validation needs is imported (YAML, netaddr, the site's rules): no pandas, no notebook
machinery, so checking a hundred sites costs little more than starting Python once.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import SiteError
from .findings import Finding, capped, errors, sort_findings

__all__ = ["EXIT_OK", "EXIT_ERRORS", "EXIT_UNREADABLE", "SiteCheck", "check_site", "validate_files"]

EXIT_OK, EXIT_ERRORS, EXIT_UNREADABLE = 0, 1, 2
WIDTH = 100  # what a terminal shows without wrapping


@dataclass
class SiteCheck:
    """One site file checked: its findings (errors first), or why it could not be read."""

    path: str  # as the person wrote it
    findings: list[Finding] = field(default_factory=list)
    unreadable: str = ""  # the sentence saying why the file is not a site file
    plan: object = None  # the NetworkLayout, for the one-file tables

    @property
    def errors(self) -> int:
        return len(errors(self.findings))

    @property
    def warnings(self) -> int:
        return len(self.findings) - self.errors

    @property
    def exit_status(self) -> int:
        return EXIT_UNREADABLE if self.unreadable else EXIT_ERRORS if self.errors else EXIT_OK

    def summary(self) -> str:
        if self.unreadable:
            return self.unreadable
        return f"{self.path}: {_count(self.errors, 'error')}, {_count(self.warnings, 'warning')}."

    def to_dict(self) -> dict:
        if self.unreadable:
            return {"site": self.path, "unreadable": self.unreadable}
        return {"site": self.path, "errors": self.errors, "findings": [f.to_dict() for f in self.findings]}


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'s' if n != 1 else ''}"


def check_site(path: str | Path) -> SiteCheck:
    """Load one site file and run every rule; an unreadable file is a SiteCheck saying why."""
    from .site import load_site
    from .site.layout import network_layout

    try:
        plan = network_layout(load_site(path))
    except SiteError as exc:
        return SiteCheck(str(path), unreadable=str(exc))
    return SiteCheck(str(path), sort_findings(plan.findings), plan=plan)


def validate_files(paths: Sequence[str | Path], fmt: str = "text", out=None) -> int:
    """Check each site file, print the report (``fmt`` text or json) and return the worst exit status."""
    import sys

    out = out or sys.stdout
    checks = [check_site(path) for path in paths]
    if len(checks) == 1:
        _report_one(checks[0], fmt, out)
    elif fmt == "json":
        print(json.dumps({"sites": [c.to_dict() for c in checks], "errors": sum(c.errors for c in checks),
                          "unreadable": sum(1 for c in checks if c.unreadable)}, indent=2), file=out)
    else:
        _report_many(checks, out)
    return max(c.exit_status for c in checks)


def _report_one(check: SiteCheck, fmt: str, out) -> None:
    import sys

    if check.unreadable:  # as before many files were taken: the sentence on stderr
        print(f"error: {check.unreadable}", file=sys.stderr)
        return
    if fmt == "json":
        print(json.dumps(check.to_dict(), indent=2), file=out)
        return
    _print_tables(check.plan, out)
    print("\nFindings" if check.findings else "\nFindings: none", file=out)
    _print_findings(check.findings, out)
    print(f"\n{check.summary()}", file=out)


def _report_many(checks: Sequence[SiteCheck], out) -> None:
    """A line per site, its errors below it (a warning in every site would bury them), then a total."""
    for check in checks:
        print(check.summary(), file=out)
        _print_findings(errors(check.findings), out)
    ok = sum(1 for c in checks if c.exit_status == EXIT_OK)
    bad = sum(1 for c in checks if c.exit_status == EXIT_ERRORS)
    unreadable = sum(1 for c in checks if c.unreadable)
    print(f"{len(checks):,} site files: {ok:,} without errors, {bad:,} with errors, {unreadable:,} unreadable; "
          f"{_count(sum(c.errors for c in checks), 'error')} and "
          f"{_count(sum(c.warnings for c in checks), 'warning')} in all.", file=out)


def _print_findings(findings: Sequence[Finding], out) -> None:
    shown, hidden = capped(findings)
    for f in shown:
        print(textwrap.fill(str(f), WIDTH, initial_indent="  ", subsequent_indent="      ",
                            break_on_hyphens=False, break_long_words=False), file=out)
    if hidden:
        print(f"  ... and {hidden:,} more findings like those above (--format json lists every one).", file=out)


def _print_tables(plan, out) -> None:
    from .stages.networks import (ALLOCATION_EMPTY, SUBNET_EMPTY, allocation_rows, preview_anyip_routes,
                              subnet_rows)
    from .display.text_table import text_table

    print("Subnet summary", file=out)
    print(text_table(subnet_rows(plan), ["network", "VLAN", "port group", "CIDR", "gateway", "appliance", "usable"],
                     empty=SUBNET_EMPTY, width=WIDTH), file=out)
    print("\nAllocations", file=out)
    print(text_table(allocation_rows(plan), ["what", "field", "as written", "count", "network"],
                     empty=ALLOCATION_EMPTY, width=WIDTH), file=out)
    preview = preview_anyip_routes(plan)
    print(file=out)
    print(textwrap.fill(preview.heading, WIDTH), file=out)
    print(preview.text, end="", file=out)
