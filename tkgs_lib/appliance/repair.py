"""The article's fix, done safely: the appliance's two network files rewritten from the plan.

:func:`plan_repair` is a pure function of the network plan and the appliance's facts: a change
row for ``/etc/vmware/route-tables.cfg`` when the route tables disagree with the plan, and for
``/etc/vmware/anyip-routes.cfg`` when its ranges are not the plan's (including ranges the site
has grown: the appliance must serve a superset of what Workload Management is given), each
shown as a diff before anything changes; ok rows otherwise. A unit that failed although its file
is already right is a change too: it is started again.

:class:`RepairOps` changes one file the way the appliance's units allow: a dated backup; stop
the unit that reads it (its stop removes routes by reading the file as it is then, so it stops
before the file changes); an atomic replace; start the unit; then the checks again. When the
unit still fails or a check still fails, the backup is put back and the unit started again, and
the stage fails naming what was tried and what the appliance said.
"""

from __future__ import annotations

import datetime
import difflib
import html
import shlex
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import ApplianceError
from ..planning import Plan, Step, ValuesOnly
from ..site.network import NetworkPlan
from .checks import ApplianceFacts, Check, appliance_checks, expected_route_tables, gather_appliance_facts
from .commands import CommandRunner
from .facts import ANYIP_FILE, ANYIP_UNIT, ROUTE_TABLES_FILE, ROUTE_TABLES_UNIT

__all__ = ["FileChange", "planned_files", "plan_repair", "RepairOps", "diffs_markdown", "ANYIP_HEADER",
           "ROUTE_TABLES_HEADER", "TITLE"]

TITLE = "the appliance's network files"
ANYIP_HEADER = """\
#
# Configuration file that contains a line-delimited list of CIDR values
# that define the network ranges used to bind the load balancer's frontends
# to virtual IP addresses.
#
# * Lines beginning with a comment character, #, are ignored
# * This file is used by the anyip-routes service
#
"""
ROUTE_TABLES_HEADER = """\
#
# Configuration file of the route-tables service: one line per network that has its own routing
# table, <TableID>,<TableName>,<MACAddress>,<CIDR>,<Gateway4>. Written by tkgs-runbook from the plan.
#
"""
UNIT_OF = {ANYIP_FILE: ANYIP_UNIT, ROUTE_TABLES_FILE: ROUTE_TABLES_UNIT}
CHECKS_OF = {ANYIP_FILE: ("anyip-routes.service", ANYIP_FILE, "local route for "),
             ROUTE_TABLES_FILE: (ROUTE_TABLES_FILE, "routing table rtctl_", "rule for rtctl_")}


@dataclass(frozen=True)
class FileChange:
    """One of the appliance's files: as it is, and as the plan writes it."""

    path: str
    unit: str
    found: list[str]  # its lines now (comments left out)
    wanted: list[str]  # the plan's lines
    content: str  # the whole file the plan writes
    why: str = ""

    @property
    def differs(self) -> bool:
        return self.found != self.wanted

    def diff(self) -> str:
        return "".join(difflib.unified_diff([f"{line}\n" for line in self.found], [f"{line}\n" for line in self.wanted],
                                            f"{self.path} (on the appliance)", f"{self.path} (from the plan)"))


def planned_files(network: NetworkPlan, facts: ApplianceFacts) -> list[FileChange]:
    """Both files, route-tables.cfg first (the anyip ranges need no table; the tables need the NICs)."""
    tables = expected_route_tables(network, facts)
    ranges = list(network.load_balancer_lines)
    found_ranges = facts.anyip_lines or []
    grown = [line for line in ranges if line not in found_ranges and found_ranges]
    why = ""
    if grown and all(line in ranges for line in found_ranges):
        why = (f"the site's ranges grew: {', '.join(grown)} added, so the appliance serves every range Workload "
               f"Management will be given")
    return [
        FileChange(ROUTE_TABLES_FILE, ROUTE_TABLES_UNIT, [e.line for e in facts.route_tables or ()], tables,
                   ROUTE_TABLES_HEADER + "".join(f"{line}\n" for line in tables)),
        FileChange(ANYIP_FILE, ANYIP_UNIT, list(found_ranges), ranges,
                   ANYIP_HEADER + "".join(f"{line}\n" for line in ranges), why),
    ]


def _failing(checks: list[Check], path: str) -> list[Check]:
    prefixes = CHECKS_OF[path]
    return [c for c in checks if c.failed and c.check.startswith(prefixes)]


def plan_repair(network: NetworkPlan, facts: ApplianceFacts, ops: Optional["RepairOps"] = None) -> Plan:
    """A change row per file that is not the plan's (or whose unit failed on the right file), ok otherwise."""
    ops = ops or ValuesOnly("a RepairOps")
    plan = Plan(TITLE)
    if facts.interfaces is None or facts.anyip_lines is None or facts.route_tables is None:
        why = "; ".join(facts.problems.values()) or "the appliance's facts could not be read"
        plan.add(Step.conflict("the appliance", "its network files readable", "unreadable", why))
        return plan
    checks = appliance_checks(network, facts)
    for change in planned_files(network, facts):
        obj = f"{change.path} (and {change.unit})"
        desired = "; ".join(change.wanted) or "no line"
        found = "; ".join(change.found) or "no line"
        failing = _failing(checks, change.path)
        if change.differs:
            reason = change.why or f"it differs from the plan: {len(change.diff().splitlines()) - 2} diff lines"
            plan.add(Step.change(obj, desired, found, lambda c=change: ops.replace(c), why=reason))
        elif failing:
            plan.add(Step.change(obj, desired, found, lambda c=change: ops.restart(c),
                                 why=f"the file is the plan's but {failing[0].check} is {failing[0].found}: "
                                     f"{change.unit} is started again"))
        else:
            plan.add(Step.ok(obj, desired, found))
    return plan


def diffs_markdown(network: NetworkPlan, facts: ApplianceFacts) -> "Diffs":
    return Diffs([c for c in planned_files(network, facts) if c.differs])


@dataclass(frozen=True)
class Diffs:
    """The diff of each file the repair would change, shown before anything changes."""

    changes: list[FileChange]

    def _repr_markdown_(self) -> str:
        if not self.changes:
            return "Both files are as the plan writes them: nothing to show."
        return "\n\n".join(f"**{c.path}**" + (f" ({c.why})" if c.why else "") + f"\n\n```diff\n{c.diff()}```"
                           for c in self.changes)

    def _repr_html_(self) -> str:
        if not self.changes:
            return "<p>Both files are as the plan writes them: nothing to show.</p>"
        return "".join(f"<p><b>{html.escape(c.path)}</b>{html.escape(' (' + c.why + ')' if c.why else '')}</p>"
                       f"<pre>{html.escape(c.diff())}</pre>" for c in self.changes)

    def __repr__(self) -> str:
        return "\n".join(c.diff() for c in self.changes) or "Both files are as the plan writes them."


class RepairOps:
    """Changes to the appliance's files over a CommandRunner, each with a backup and a rollback."""

    def __init__(self, runner: CommandRunner, network: NetworkPlan,
                 now: Callable[[], datetime.datetime] = datetime.datetime.now) -> None:
        self.runner, self.network, self.now = runner, network, now
        self.backups: dict[str, str] = {}  # path → its backup on the appliance, once made

    def _run(self, command: str, doing: str):
        result = self.runner.run(command, timeout=60)
        if not result.ok:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise ApplianceError(f"{doing} failed: `{command}` exited {result.exit_status}"
                                 + (f": {said[-1]}" if said else "."))
        return result

    def _still_failing(self, path: str) -> list[Check]:
        facts = gather_appliance_facts(self.runner, self.network)
        return _failing(appliance_checks(self.network, facts), path)

    def replace(self, change: FileChange) -> None:
        """Backup, stop the unit, replace the file atomically, start the unit, check; roll back on failure."""
        path, unit = change.path, change.unit
        backup = f"{path}.tkgs-{self.now():%Y%m%d-%H%M%S}.bak"
        self._run(f"cp -p {path} {backup}", f"backing up {path}")
        self.backups[path] = backup
        self._run(f"systemctl stop {unit}", f"stopping {unit}")
        staged = f"{path}.tkgs-new"
        self._run(f"printf %s {shlex.quote(change.content)} > {staged} && mv -f {staged} {path}",
                  f"replacing {path}")
        started = self.runner.run(f"systemctl start {unit}", timeout=60)
        failing = self._still_failing(path)
        if started.ok and not failing:
            return
        said = failing[0].found if failing else (started.stderr or started.stdout).strip()
        self._rollback(path, unit, backup)
        state = self.runner.run(f"systemctl is-active {unit}", timeout=30).stdout.strip() or "unknown"
        raise ApplianceError(
            f"repairing {path} did not take: after replacing it (backup {backup}) and starting {unit}, {said}. The "
            f"backup was put back and {unit} started again; it is now {state}, as before. Fix what the appliance said "
            f"(see the verify stage) and run the repair again.")

    def restart(self, change: FileChange) -> None:
        """The file is right but its unit failed: stop and start it; the checks must then pass."""
        self._run(f"systemctl stop {change.unit}", f"stopping {change.unit}")
        started = self.runner.run(f"systemctl start {change.unit}", timeout=60)
        failing = self._still_failing(change.path)
        if not started.ok or failing:
            said = failing[0].found if failing else (started.stderr or started.stdout).strip()
            raise ApplianceError(f"starting {change.unit} again did not help: {said}.")

    def _rollback(self, path: str, unit: str, backup: str) -> None:
        self.runner.run(f"systemctl stop {unit}", timeout=60)
        self._run(f"cp -p {backup} {path}", f"putting {backup} back")
        self.runner.run(f"systemctl start {unit}", timeout=60)
