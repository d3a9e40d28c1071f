"""The article's fix, done safely: the appliance's network files rewritten from the plan.

:func:`plan_repair` is a pure function of the network plan, the appliance's facts and its release
(:mod:`tkgs_lib.appliance.releases`): one row per unit that reads the files, a change when a file
is not what the release's first boot writes for this plan (``route-tables.cfg`` with both lines
per network from v0.1.9, v0.2.0's ``workload-networks.cfg``, ``anyip-routes.cfg`` with the site's
ranges, including ranges the site has grown: the appliance must serve a superset of what Workload
Management is given), each file shown as a diff before anything changes; ok rows otherwise. A unit
that failed although its files are already right is a change too: it is started again. First of all,
a row per local route the appliance holds for a range the plan does not (a range the site dropped):
no unit removes it any more, so the repair does (``ip route del table local``).

:class:`RepairOps` changes one unit's files the way the appliance's units allow: a dated backup of
each; stop the unit (its stop removes what it made by reading the files as they are then, so it
stops before they change); what the unit made cleaned by the repair itself, since no release's own
``down`` leaves it clean: for route-tables.service the routing tables and their rules (v0.1.10's
keeps the link-scoped routes, so its next ``up`` fails with "File exists"; v0.2.0's deletes no
rule), for anyip-routes.service its local routes (its test of each with ``grep -q`` under pipefail
can read a present route as absent); an atomic replace of each file; start the unit; then the
checks again. The kernel then holds what
the release's first boot makes, and so it does after a reboot (the unit started from these files
on a fresh kernel). When the unit still fails or a check still fails, the backups are put back the
same way and the unit started again, and the stage fails naming what was tried and what the
appliance said.
"""

from __future__ import annotations

import datetime
import difflib
import html
import shlex
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import ApplianceError, SessionLost
from ..planning import Plan, Step, VALUES_ONLY
from ..site.network import NetworkLayout
from .checks import (ApplianceFacts, Check, appliance_checks, expected_route_tables, gather_appliance_facts,
                     stale_local_routes)
from .commands import CommandRunner, run_change
from .facts import ANYIP_FILE, ANYIP_UNIT, ROUTE_TABLES_FILE, ROUTE_TABLES_UNIT
from .releases import (NO_RELEASE_GIVEN, TABLE_IDS, WORKLOAD_NETWORKS_FILE, ReleaseChoice, anyip_routes_text,
                       lines_text, route_tables_text)

__all__ = ["FileChange", "UnitChange", "planned_changes", "plan_repair", "RepairOps", "diffs_markdown", "TITLE",
           "FLUSH_ANYIP_ROUTES"]

TITLE = "the appliance's network files"
@dataclass(frozen=True)
class FileChange:
    """One of the appliance's files: as it is, and as the plan writes it."""

    path: str
    found: list[str]  # its lines now, as the unit reads them (comments left out)
    wanted: list[str]  # the plan's lines
    content: str  # the whole file the plan writes
    why: str = ""
    unread: str = ""  # text after the file's last line break, which the unit never reads

    @property
    def differs(self) -> bool:
        return self.found != self.wanted or bool(self.unread)

    def diff(self) -> str:
        found = [f"{line}\n" for line in self.found] + ([f"{self.unread}\\ no line break, never read\n"]
                                                          if self.unread else [])
        return "".join(difflib.unified_diff(found, [f"{line}\n" for line in self.wanted],
                                            f"{self.path} (on the appliance)", f"{self.path} (from the plan)"))


@dataclass(frozen=True)
class UnitChange:
    """The files one of the appliance's units reads, and the unit."""

    unit: str
    files: list[FileChange]

    @property
    def object(self) -> str:
        return f"{' and '.join(f.path for f in self.files)} (and {self.unit})"

    @property
    def differing(self) -> list[FileChange]:
        return [f for f in self.files if f.differs]

    def lines(self, which: str) -> str:
        def one(change: FileChange) -> str:
            lines = getattr(change, which)
            return "; ".join(lines) or "no line"

        if len(self.files) == 1:
            return one(self.files[0])
        return " | ".join(f"{f.path.rsplit('/', 1)[-1]}: {one(f)}" for f in self.files)


def planned_changes(network: NetworkLayout, facts: ApplianceFacts, release: ReleaseChoice) -> list[UnitChange]:
    """Both units' files, route-tables.service first (the anyip ranges need no table; the tables need the NICs)."""
    tables = expected_route_tables(network, facts, release)
    ranges = list(network.load_balancer_lines)
    found_ranges = facts.anyip_lines or []
    grown = [line for line in ranges if line not in found_ranges and found_ranges]
    why = ""
    if grown and all(line in ranges for line in found_ranges):
        why = (f"the site's ranges grew: {', '.join(grown)} added, so the appliance serves every range Workload "
               f"Management will be given")
    route_files = [FileChange(ROUTE_TABLES_FILE, [e.line for e in facts.route_tables or ()], tables,
                              route_tables_text(tables))]
    if release.release.additional_workload_networks:
        networks = list(network.additional_workload_networks)
        held = facts.workload_networks
        route_files.append(FileChange(WORKLOAD_NETWORKS_FILE, list(held.lines) if held else [], networks,
                                      lines_text(networks), unread=held.unread if held else ""))
    anyip = facts.anyip_file
    return [UnitChange(ROUTE_TABLES_UNIT, route_files),
            UnitChange(ANYIP_UNIT, [FileChange(ANYIP_FILE, list(found_ranges), ranges,
                                               anyip_routes_text(ranges), why,
                                               unread=anyip.unread if anyip else "")])]


def _failing(checks: list[Check], unit: str) -> list[Check]:
    return [c for c in checks if c.failed and c.unit == unit]


def plan_repair(network: NetworkLayout, facts: ApplianceFacts, ops: "RepairOps" = VALUES_ONLY,
                release: Optional[ReleaseChoice] = None) -> Plan:
    """A change row per unit whose files are not the plan's (or that failed on the right files), ok otherwise."""
    release = release or (ops.release if isinstance(ops, RepairOps) else NO_RELEASE_GIVEN)
    plan = Plan(TITLE)
    if facts.interfaces is None or facts.anyip_file is None or facts.route_tables is None or (
            release.release.additional_workload_networks and facts.workload_networks is None):
        why = "; ".join(facts.problems.values()) or "the appliance's facts could not be read"
        plan.add(Step.conflict("the appliance", "its network files readable", "unreadable", why))
        return plan
    checks = appliance_checks(network, facts, release)
    for route in stale_local_routes(network, facts.local_routes or []):  # first: no unit's restart removes them
        plan.add(Step.change(f"local route for {route.dst} on the appliance",
                             "none: not in haproxy.load_balancer_ranges", f"local {route.dst} dev lo",
                             lambda dst=route.dst: ops.remove_local_route(dst),
                             why=f"the appliance answers for {route.dst}, which the plan's ranges do not hold, and "
                                 f"{ANYIP_UNIT} never removes it now that {ANYIP_FILE} lacks it: it is removed"))
    for change in planned_changes(network, facts, release):
        desired, found = change.lines("wanted"), change.lines("found")
        failing = _failing(checks, change.unit)
        differing = change.differing
        if differing:
            reason = "; ".join(f.why for f in differing if f.why) or (
                f"it differs from the plan: {sum(len(f.diff().splitlines()) - 2 for f in differing)} diff lines")
            plan.add(Step.change(change.object, desired, found, lambda c=change: ops.replace(c), why=reason))
        elif failing:
            plan.add(Step.change(change.object, desired, found, lambda c=change: ops.restart(c),
                                 why=f"the files are the plan's but {failing[0].check} is {failing[0].found}: "
                                     f"{change.unit} is started again"))
        else:
            plan.add(Step.ok(change.object, desired, found))
    return plan


def diffs_markdown(network: NetworkLayout, facts: ApplianceFacts, release: Optional[ReleaseChoice] = None) -> "Diffs":
    release = release or NO_RELEASE_GIVEN
    return Diffs([f for change in planned_changes(network, facts, release) for f in change.differing])


@dataclass(frozen=True)
class Diffs:
    """The diff of each file the repair would change, shown before anything changes."""

    changes: list[FileChange]

    def _repr_markdown_(self) -> str:
        if not self.changes:
            return "Every file is as the plan writes it: nothing to show."
        return "\n\n".join(f"**{c.path}**" + (f" ({c.why})" if c.why else "") + f"\n\n```diff\n{c.diff()}```"
                           for c in self.changes)

    def _repr_html_(self) -> str:
        if not self.changes:
            return "<p>Every file is as the plan writes it: nothing to show.</p>"
        return "".join(f"<p><b>{html.escape(c.path)}</b>{html.escape(' (' + c.why + ')' if c.why else '')}</p>"
                       f"<pre>{_coloured(c.diff())}</pre>" for c in self.changes)

    def __repr__(self) -> str:
        return "\n".join(c.diff() for c in self.changes) or "Every file is as the plan writes it."


# A unified diff's lines by their first character, each colour set with its background so it reads in a
# light and a dark theme alike; its first two lines are the files' names.
_DIFF_STYLES = {"-": "background-color: #ffebe9; color: #82071e", "+": "background-color: #e6ffec; color: #116329",
                "@": "color: #8250df"}


def _coloured(diff: str) -> str:
    """A unified diff as HTML, escaped (the appliance's lines are its own), removed and added lines coloured."""
    def line(number: int, text: str) -> str:
        style = "font-weight: bold" if number < 2 else _DIFF_STYLES.get(text[:1], "")
        return f'<span style="{style}">{html.escape(text)}</span>' if style else html.escape(text)
    return "\n".join(line(number, text) for number, text in enumerate(diff.split("\n")))


# Every local route anyip-routes.service made (on lo, `ip route add`'s protocol boot), which its own down may leave:
# anyiproutectl.sh (v0.1.7 to v0.2.0) tests each with `grep -q` under pipefail, which can read a present route as
# absent, and its up then fails on it with "File exists" for the same reason; flushed, up starts as on a fresh kernel.
FLUSH_ANYIP_ROUTES = "ip route flush table local dev lo proto boot"


def _stopped_anyip() -> str:
    return f"systemctl stop {ANYIP_UNIT} && {FLUSH_ANYIP_ROUTES}"


def _clean_route_tables() -> str:
    """What no release's ``down`` leaves clean: every route of the tables and every rule that looks them
    up (v0.1.10 keeps the link-scoped routes, v0.2.0 every rule), so ``up`` starts as on a fresh kernel."""
    return "; ".join(f"ip route flush table {n} 2>/dev/null; while ip rule del lookup {n} 2>/dev/null; do :; done"
                     for n in TABLE_IDS.values()) + "; true"


class RepairOps:
    """Changes to the appliance's files over a CommandRunner, each with a backup and a rollback."""

    @classmethod
    def for_run(cls, run) -> Optional["RepairOps"]:
        return cls(run.appliance, run.network, run.appliance_release) if run.appliance is not None else None

    def __init__(self, runner: CommandRunner, network: NetworkLayout, release: Optional[ReleaseChoice] = None,
                 now: Callable[[], datetime.datetime] = datetime.datetime.now) -> None:
        self.runner, self.network, self.now = runner, network, now
        self.release = release or NO_RELEASE_GIVEN
        self.backups: dict[str, str] = {}  # path → its backup on the appliance, once made
        self._read_after_change: Optional[ApplianceFacts] = None  # what the last check read; nothing changed since

    def take_read_after_change(self) -> Optional[ApplianceFacts]:
        """The facts the last change's own check read (nothing has changed on the appliance since), once:
        the stage's read after apply is then that read, not another exec."""
        facts, self._read_after_change = self._read_after_change, None
        return facts

    def _run(self, command: str, doing: str):
        """A command that changes the appliance (on the ledger); ApplianceError when it exits non-zero."""
        self._read_after_change = None  # a command may change what was read
        result = run_change(self.runner, command, timeout=60)
        if not result.ok:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise ApplianceError(f"{doing} failed: `{command}` exited {result.exit_status}"
                                 + (f": {said[-1]}" if said else "."))
        return result

    def _still_failing(self, unit: str) -> list[Check]:
        facts = gather_appliance_facts(self.runner, self.network, self.release)
        if facts.lost:  # nothing could be checked: not a success, but a session lost after the change
            raise SessionLost(facts.lost)
        self._read_after_change = facts
        return _failing(appliance_checks(self.network, facts, self.release), unit)

    def _stop(self, unit: str, done: list[str]) -> None:
        if unit == ANYIP_UNIT:  # one command: its routes are lo's, gone in one flush
            self._run(_stopped_anyip(), f"stopping {unit} and removing its local routes")
            done.append(f"{unit} stopped and its local routes removed")
            return
        self._run(f"systemctl stop {unit}", f"stopping {unit}")
        done.append(f"{unit} stopped")
        if unit == ROUTE_TABLES_UNIT:
            self._run(_clean_route_tables(), "cleaning the routing tables")
            done.append("its routing tables and their rules flushed")

    def remove_local_route(self, dst: str) -> None:
        """Remove a local route of a range the plan does not hold; the appliance must then not hold it."""
        self._run(f"ip route del table local {shlex.quote(dst)} dev lo", f"removing the local route for {dst}")
        facts = gather_appliance_facts(self.runner, self.network, self.release)
        if facts.lost:
            raise SessionLost(facts.lost)
        self._read_after_change = facts
        if any(r.dst == dst for r in stale_local_routes(self.network, facts.local_routes or [])):
            raise ApplianceError(f"the local route for {dst} is still on the appliance after `ip route del table "
                                 f"local {dst} dev lo`: see `ip route show table local` there.")

    def replace(self, change: UnitChange) -> None:
        """Backups, stop the unit, replace its files atomically, start it, check; roll back on failure."""
        self._redo(change, replace_files=True)

    def restart(self, change: UnitChange) -> None:
        """The files are right but the unit failed: stop and start it; the checks must then pass."""
        self._redo(change, replace_files=False)

    def _redo(self, change: UnitChange, replace_files: bool) -> None:
        """Stop ``change``'s unit, replace its files when asked (a dated backup of each first), start it and
        check; put it back as it was when it does not take. A session lost on the way is reconnected (host
        key checked) and put back, or, when it cannot be, the appliance's state is said exactly, with the
        commands that put it back."""
        unit, stamp = change.unit, f"{self.now():%Y%m%d-%H%M%S}"
        backups: dict[str, str] = {}
        done: list[str] = []  # what has been changed on the appliance, in order, for a session lost on the way
        try:
            for file in change.differing if replace_files else ():
                backup = f"{file.path}.tkgs-{stamp}.bak"
                # A file the appliance lacks (v0.2.0 writes workload-networks.cfg only when there are networks)
                # is backed up as absent: the rollback removes it again.
                self._run(f"if [ -e {file.path} ]; then cp -p {file.path} {backup}; else : > {backup}.absent; fi",
                          f"backing up {file.path}")
                backups[file.path] = self.backups[file.path] = backup
            self._stop(unit, done)
            for file in change.differing if replace_files else ():
                staged = f"{file.path}.tkgs-new"
                self._run(f"printf %s {shlex.quote(file.content)} > {staged} && mv -f {staged} {file.path}",
                          f"replacing {file.path}")
                done.append(f"{file.path} replaced by the plan's")
            started = run_change(self.runner, f"systemctl start {unit}", timeout=60)
            failing = self._still_failing(unit)
        except SessionLost as lost:
            raise self._after_lost_session(lost, unit, backups, done) from None
        if started.ok and not failing:
            return
        said = failing[0].found if failing else (started.stderr or started.stdout).strip()
        if not backups:
            raise ApplianceError(f"starting {unit} again did not help: {said}.")
        self._rollback(unit, backups)
        state = self.runner.run(f"systemctl is-active {unit}", timeout=30).stdout.strip() or "unknown"
        kept = ", ".join(backups.values())
        raise ApplianceError(
            f"repairing {' and '.join(backups)} did not take: after replacing it (backup {kept}) and starting {unit}, "
            f"{said}. The backup was put back and {unit} started again; it is now {state}, as before. Fix what the "
            f"appliance said (see the verify stage) and run the repair again.")

    def _after_lost_session(self, lost: SessionLost, unit: str, backups: dict[str, str], done: list[str]) -> ApplianceError:
        """The error for a session lost while ``unit`` was changed: reconnected and put back when the
        appliance answers again, else the state it was left in and how to put it back."""
        kept = ", ".join(backups.values()) or "none made"
        if not done:  # lost before the unit was stopped: the files and the unit are as they were
            made = f" but the backup files ({kept})" if backups else ""
            return ApplianceError(f"{lost.message}, before the unit was stopped: nothing was changed{made}. Run the "
                                  f"repair again.")
        before = f"{lost.message}, after these steps: {'; '.join(done)}"
        reconnect = getattr(self.runner, "reconnect", None)
        try:
            if reconnect is None:
                raise ApplianceError("this runner cannot reconnect")
            reconnect()
            self._rollback(unit, backups)
            state = self.runner.run(f"systemctl is-active {unit}", timeout=30).stdout.strip() or "unknown"
        except ApplianceError as failed:
            restore = "; ".join([f"systemctl stop {unit}"] + [
                f"cp -p {backup} {path}" for path, backup in backups.items()] + [f"systemctl start {unit}"])
            backed = f", the backups at {kept}" if backups else ""
            return ApplianceError(
                f"{before}. It could not be reconnected to put things back ({failed.message.rstrip('.')}), so the "
                f"appliance is now: {', '.join(done)}{backed}. To put it back as it was, on the appliance's console: "
                f"`{restore}`; or run the repair stage again once the appliance answers: it plans from what it finds.")
            return error
        if backups:
            put_back = f"put the backups back: {unit} is {state} again, as before; the backups stay at {kept}"
        else:
            put_back = f"started {unit} again: it is {state}"
        error = ApplianceError(f"{before}. tkgs-runbook reconnected (host key checked) and {put_back}. Run the repair "
                               f"again once the link to the appliance holds.")
        error.effect = f"{unit} read {state} after it was put back" + (
            f", the backup files left at {kept}" if backups else "")
        return error

    def _rollback(self, unit: str, backups: dict[str, str]) -> None:
        """Stop ``unit``, put ``backups`` back (none: the files stay) and start it again."""
        self._read_after_change = None
        run_change(self.runner, _stopped_anyip() if unit == ANYIP_UNIT else f"systemctl stop {unit}", timeout=60)
        if unit == ROUTE_TABLES_UNIT:
            run_change(self.runner, _clean_route_tables(), timeout=60)
        for path, backup in backups.items():
            self._run(f"if [ -e {backup}.absent ]; then rm -f {path} {backup}.absent; else cp -p {backup} {path}; fi",
                      f"putting {backup} back")
        run_change(self.runner, f"systemctl start {unit}", timeout=60)
