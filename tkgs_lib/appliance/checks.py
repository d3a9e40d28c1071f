"""The article's "Checking HA Proxy", as pure functions of the appliance's facts and the network plan.

Each check is one row: what is checked, what the plan expects, what the appliance holds, its
status (ok, failed, not checked, or warning: worth reading, failing nothing) and, for a failure,
the fix with its likely cause. The facts are gathered once (:func:`gather_appliance_facts`,
through any CommandRunner); every check reads only them, the network plan and the appliance's
release (:mod:`tkgs_lib.appliance.releases`: what that release's first boot writes and its units
make), so each is tested on recorded output with no appliance at all.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal, Optional

import netaddr

from ..errors import ApplianceError, SessionLost
from ..site.network import NetworkLayout
from ..display.tables import Table
from .commands import CommandRunner, Fact, gather_many, value_or_problem
from .facts import (ANYIP_FILE, ANYIP_UNIT, FAILED_UNITS, INTERFACES, INTERFACES_TEXT, ROUTE_TABLES_FILE,
                    ROUTE_TABLES_UNIT, RULES,
                    ConfigText, Interface, Route, RouteTableEntry, Rule, anyip_unit, config_file, ping,
                    route_tables_file, routes, shown, unit_log, unit_state)
from .releases import KNOWN, NO_RELEASE_GIVEN, TABLE_IDS, WORKLOAD_NETWORKS_FILE, ReleaseChoice

__all__ = ["Check", "ApplianceFacts", "gather_appliance_facts", "appliance_checks", "checks_table", "expected_route_tables",
           "anyip_local_routes", "stale_local_routes", "TABLE_IDS", "ROUTED_ROLES"]

Status = Literal["ok", "failed", "not checked", "warning"]
ROUTED_ROLES = ("workload", "frontend")  # the networks with a routing table of their own (management keeps main)


@dataclass(frozen=True)
class Check:
    check: str
    expected: str
    found: str
    status: Status
    fix: str = ""
    unit: str = ""  # the appliance's unit that makes what this check looks at (a repair watches its rows)
    suggested: tuple[str, ...] = ()  # the lines the fix says to write into the file it names, when it names them

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def checks_table(checks: list[Check]) -> Table:
    return Table([{"check": c.check, "expected": c.expected, "found": c.found, "status": c.status, "fix": c.fix}
                  for c in checks], ["check", "expected", "found", "status", "fix"], empty="Nothing was checked.")


@dataclass
class ApplianceFacts:
    """What the appliance holds, read over SSH; a fact that could not be read is None, with why."""

    interfaces: Optional[dict[str, Interface]] = None
    failed_units: Optional[list[str]] = None
    anyip_state: Optional[str] = None
    anyip_log: list[str] = field(default_factory=list)
    route_tables_state: Optional[str] = None
    route_tables_log: list[str] = field(default_factory=list)
    anyip_file: Optional[ConfigText] = None
    local_routes: Optional[list[Route]] = None
    route_tables: Optional[list[RouteTableEntry]] = None
    workload_networks: Optional[ConfigText] = None  # v0.2.0's workload-networks.cfg (no file: no lines)
    rules: Optional[list[Rule]] = None
    table_routes: dict[str, Optional[list[Route]]] = field(default_factory=dict)  # role → its table's routes

    @property
    def anyip_lines(self) -> Optional[list[str]]:
        return None if self.anyip_file is None else list(self.anyip_file.lines)
    pings: dict[str, Optional[bool]] = field(default_factory=dict)  # role → answered from its interface (None: not run)
    problems: dict[str, str] = field(default_factory=dict)  # fact → why it could not be read
    lost: str = ""  # the SSH session was lost while they were read: why nothing could be read


def fact_commands(network: NetworkLayout, release: ReleaseChoice) -> dict[str, Fact]:
    """Every fact the checks read, by the name its problem is kept under."""
    facts: dict[str, Fact] = {
        "interfaces (JSON)": INTERFACES, "interfaces": INTERFACES_TEXT,  # the text form, for an ip without JSON
        "failed units": FAILED_UNITS, ANYIP_UNIT: anyip_unit(), f"{ANYIP_UNIT} log": unit_log(ANYIP_UNIT),
        ROUTE_TABLES_UNIT: unit_state(ROUTE_TABLES_UNIT), f"{ROUTE_TABLES_UNIT} log": unit_log(ROUTE_TABLES_UNIT),
        ANYIP_FILE: config_file(ANYIP_FILE), "local routes": routes("local"),
        ROUTE_TABLES_FILE: route_tables_file(), "rules": RULES}
    if release.release.additional_workload_networks:
        facts[WORKLOAD_NETWORKS_FILE] = config_file(WORKLOAD_NETWORKS_FILE, missing_is_empty=True)
    for role in ROUTED_ROLES:
        if role in network.networks:  # by number: readable even where rt_tables lacks the name
            facts[f"rtctl_{role}"] = routes(TABLE_IDS[role])
    for role, planned in network.networks.items():
        if planned.gateway is not None:
            facts[f"ping {role}"] = ping(role, str(planned.gateway))
    return facts


def gather_appliance_facts(runner: CommandRunner, network: NetworkLayout,
                           release: Optional[ReleaseChoice] = None) -> ApplianceFacts:
    """Every fact the checks read, in one command through ``runner`` (:func:`gather_many`)."""
    release = release or NO_RELEASE_GIVEN
    try:
        read = gather_many(runner, fact_commands(network, release))
    except SessionLost as exc:  # not one fact was read: every check says so, none passes
        return ApplianceFacts(lost=exc.message)
    facts = ApplianceFacts()

    def value(name: str):
        return value_or_problem(read, name, facts.problems)

    json_form = read["interfaces (JSON)"]
    facts.interfaces = json_form if not isinstance(json_form, ApplianceError) else value("interfaces")
    facts.failed_units = value("failed units")
    facts.anyip_state = value(ANYIP_UNIT)
    facts.anyip_log = value(f"{ANYIP_UNIT} log") or []
    facts.route_tables_state = value(ROUTE_TABLES_UNIT)
    facts.route_tables_log = value(f"{ROUTE_TABLES_UNIT} log") or []
    facts.anyip_file = value(ANYIP_FILE)
    facts.local_routes = value("local routes")
    facts.route_tables = value(ROUTE_TABLES_FILE)
    if WORKLOAD_NETWORKS_FILE in read:
        facts.workload_networks = value(WORKLOAD_NETWORKS_FILE)
    facts.rules = value("rules")
    for role in ROUTED_ROLES:
        if f"rtctl_{role}" in read:
            facts.table_routes[role] = value(f"rtctl_{role}")
    for role in network.networks:
        if f"ping {role}" in read and facts.interfaces and role in facts.interfaces:
            facts.pings[role] = value(f"ping {role}")  # None: the ping could not run (its problem says why)
    return facts


# --- the checks -----------------------------------------------------------------------------------

def _not_read(check: str, expected: str, why: str) -> Check:
    return Check(check, expected, f"could not be read: {why}", "not checked", "")


def _reason(facts: ApplianceFacts, name: str, default: str = "") -> str:
    return facts.problems.get(name) or facts.lost or default


def _interface_checks(network: NetworkLayout, facts: ApplianceFacts) -> list[Check]:
    rows = []
    for role, planned in network.networks.items():
        check, expected = f"interface {role}", f"{planned.appliance}, up"
        if facts.interfaces is None:
            rows.append(_not_read(check, expected, _reason(facts, "interfaces", "")))
            continue
        interface = facts.interfaces.get(role)
        if interface is None:
            fix = ("the VM was deployed with the default option (2 NICs): deploy it with deployment frontend"
                   if role == "frontend" else f"the VM has no {role} NIC: deploy it again from the appliance's OVA")
            rows.append(Check(check, expected, f"no interface named {role}", "failed", fix))
            continue
        found = f"{', '.join(interface.addresses) or 'no IPv4 address'}, {'up' if interface.up else interface.operstate}"
        wanted = str(planned.appliance)
        if wanted in interface.addresses and interface.up:
            rows.append(Check(check, expected, found, "ok"))
        elif wanted not in interface.addresses:
            rows.append(Check(check, expected, found, "failed",
                              f"the appliance was deployed with another network.{role}_ip than the site's "
                              f"haproxy.{role}_ip ({wanted}): deploy it again with the site's value "
                              f"(haproxy.replace_existing: true)."))
        else:
            rows.append(Check(check, expected, found, "failed",
                              f"the {role} NIC is down: connect it in vCenter (its port group and uplinks), then "
                              f"`ip link set {role} up` on the appliance."))
    return rows


def _failed_units(facts: ApplianceFacts) -> Check:
    check, expected = "failed units (systemctl list-units --state failed)", "none"
    if facts.failed_units is None:
        return _not_read(check, expected, _reason(facts, "failed units", ""))
    if not facts.failed_units:
        return Check(check, expected, "none", "ok")
    return Check(check, expected, ", ".join(facts.failed_units), "failed",
                 "see the rows of each unit below; after fixing, `systemctl restart` it and check again.")


SAID = 3  # a failed start's last error lines shown in its own words
_INVALID = ("RTNETLINK answers: Invalid argument", "Error: Invalid prefix for given prefix length.")
# What anyiproutectl.sh says of its own progress (v0.1.7 to v0.2.0): anything else it printed is an error.
_ANYIP_PROGRESS = re.compile(r"(adding|removing) route for |route already (exists|removed) for ")


def _last_start(log: list[str]) -> list[str]:
    """What a unit's script printed in the unit's last start, as the journal keeps it: systemd's
    "Starting <unit>..." begins a start, and its "Control process exited" ends it (what follows is
    ExecStopPost's down, whose errors say nothing of why the start failed). The whole log when it shows
    no start (``journalctl -n`` may have cut it): the last start decides, never an earlier one."""
    said, ended = [], False
    for line in log:
        text = line.split("]: ", 1)[1] if "]: " in line else line
        if "systemd[" in line:
            if text.startswith("Starting "):
                said, ended = [], False
            ended = ended or "Control process exited" in text
            continue
        if not ended:
            said.append(text)
    return said


def _anyip_unit(network: NetworkLayout, facts: ApplianceFacts) -> Check:
    check, expected = ANYIP_UNIT, "active"
    if facts.anyip_state is None:
        return _not_read(check, expected, _reason(facts, ANYIP_UNIT, ""))
    if facts.anyip_state == "active":
        return Check(check, expected, "active", "ok")
    line, errors = "", []
    for said in _last_start(facts.anyip_log):
        added = re.search(r"adding route for (\S+)", said)
        if added:
            line, errors = added.group(1), []
        elif not _ANYIP_PROGRESS.search(said) and said.strip():
            errors.append(said.strip())
    on_line = f" on the line {line}" if line else ""
    invalid = next((e for e in _INVALID if any(e in error for error in errors)), "")
    if invalid and line:
        lines = network.load_balancer_lines
        write = (f"write the plan's {_plural(lines, 'line')}, {', '.join(lines)} (haproxy.load_balancer_ranges), in "
                 f"{ANYIP_FILE}" if lines else f"give the site haproxy.load_balancer_ranges for {ANYIP_FILE}")
        return Check(check, expected, f"{facts.anyip_state}: '{invalid}'{on_line}", "failed",
                     f"{line} has host bits set, so the kernel refuses it and every range after it is never served: "
                     f"{write}; the repair stage does it safely (stop, replace, start).", suggested=tuple(lines))
    if line and any("File exists" in error for error in errors):
        return Check(check, expected, f"{facts.anyip_state}: 'File exists'{on_line}", "failed",
                     f"a route for {line} already exists on another device (an address or range that overlaps it): "
                     f"remove that route, or give the appliance a range no one else holds.")
    words = " / ".join(errors[-SAID:])
    return Check(check, expected, f"{facts.anyip_state}: '{words}'{on_line}" if words else facts.anyip_state, "failed",
                 f"read its log (`journalctl -u {ANYIP_UNIT}`): its last start failed{on_line}; the repair stage "
                 f"rewrites {ANYIP_FILE} from the plan.")


def _plural(items: list, word: str) -> str:
    return word if len(items) == 1 else f"{word}s"


def _anyip_file(network: NetworkLayout, facts: ApplianceFacts) -> Check:
    check = ANYIP_FILE
    expected = ", ".join(network.load_balancer_lines) or "no range"
    if facts.anyip_file is None:
        return _not_read(check, expected, _reason(facts, ANYIP_FILE, ""))
    lines, unread = list(facts.anyip_file.lines), facts.anyip_file.unread
    found = ", ".join(shown(line) for line in lines) or "no range"
    if lines == network.load_balancer_lines and not unread:
        return Check(check, expected, found, "ok")
    missing = [line for line in network.load_balancer_lines if line not in lines]
    extra = [line for line in lines if line not in network.load_balancer_lines]
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
        [f"not in the plan: {', '.join(shown(line) for line in extra)}"] if extra else []) + (
        [f"{unread!r} has no line break after it, so anyiproutectl.sh never reads it"] if unread else [])
    why = "; ".join(parts) or "the same ranges in another order"
    return Check(check, expected, found, "failed",
                 f"{why}. The ranges Workload Management will be given must all be served: the repair stage "
                 f"rewrites the file from the site's haproxy.load_balancer_ranges.")


def anyip_local_routes(local_routes: list[Route]) -> list[Route]:
    """The local routes anyip-routes.service makes: on ``lo``, not the kernel's own (an interface's
    addresses are the kernel's, on their interface; ``lo``'s 127.0.0.0/8 is the kernel's too)."""
    return [r for r in local_routes if r.type == "local" and r.dev == "lo" and r.protocol != "kernel"]


def _local_routes(network: NetworkLayout, facts: ApplianceFacts) -> list[Check]:
    rows = []
    if facts.local_routes is None:
        return [_not_read("local routes (ip route show table local)", "one per range",
                          _reason(facts, "local routes", ""))]
    held = set()
    for route in anyip_local_routes(facts.local_routes):
        try:
            held.add(netaddr.IPNetwork(route.dst))
        except (netaddr.AddrFormatError, ValueError):
            continue
    for line in network.load_balancer_lines:
        check, expected = f"local route for {line}", f"local {line} dev lo"
        try:
            wanted = netaddr.IPNetwork(line)
        except (netaddr.AddrFormatError, ValueError):
            rows.append(Check(check, expected, "not a CIDR block", "failed", "fix the range in the site first."))
            continue
        if wanted in held:
            rows.append(Check(check, expected, "present", "ok"))
        else:
            rows.append(Check(check, expected, "missing", "failed",
                              "the kernel does not answer for these virtual IPs: anyip-routes.service did not add "
                              "it (see its row); restart the unit once its file is right."))
    return rows


def stale_local_routes(network: NetworkLayout, local_routes: list[Route]) -> list[Route]:
    """anyip-routes.service's local routes for addresses no range of the plan holds."""
    planned = netaddr.IPSet()
    for line in network.load_balancer_lines:
        try:
            planned.add(netaddr.IPNetwork(line))
        except (netaddr.AddrFormatError, ValueError):
            continue
    stale = []
    for route in anyip_local_routes(local_routes):
        try:
            inside = netaddr.IPSet([netaddr.IPNetwork(route.dst)]).issubset(planned)
        except (netaddr.AddrFormatError, ValueError):
            inside = False
        if not inside:
            stale.append(route)
    return stale


def _stale_local_routes(network: NetworkLayout, facts: ApplianceFacts) -> list[Check]:
    """A row per local route for a range the plan does not hold: the appliance answers for every address of it.
    No unit makes it any more (the file lacks it), so no unit's restart removes it: the repair stage does."""
    if facts.local_routes is None:
        return []
    lines = ", ".join(network.load_balancer_lines) or "none"
    # v0.1.10 anyiproutectl.sh (haproxytech/vmware-haproxy, ansible/roles/vmware/files/var/lib/vmware/, the same
    # file v0.1.7 to v0.2.0): down_routes removes the routes of the lines its file holds when it stops, each only
    # if `ip route show table local | grep -qF "local ${ip%/32} dev lo scope host"` succeeds under `set -o
    # pipefail`; grep -q leaves at its first match, ip's next write then dies of SIGPIPE and the pipeline fails.
    return [Check(f"local route for {route.dst} (not a range of the plan)",
                  f"none outside the plan's ranges ({lines}, haproxy.load_balancer_ranges)",
                  f"local {route.dst} dev lo", "failed",
                  f"the appliance answers for every address of {route.dst}, which the site's "
                  f"haproxy.load_balancer_ranges no longer holds: anyip-routes.service added it from an earlier "
                  f"{ANYIP_FILE}, and its stop left it (it removes only the routes of the lines the file holds "
                  f"then, and its `grep -q` under pipefail can read a present route as absent); the repair stage "
                  f"removes it (`ip route del table local {route.dst} dev lo`).")
            for route in stale_local_routes(network, facts.local_routes)]


def _routed(network: NetworkLayout):
    """The plan's networks that get a routing table (first boot: a gateway and an address, and for the
    frontend its NIC, which only the frontend deployment has), in the order first boot writes them."""
    for role in ROUTED_ROLES:
        planned = network.networks.get(role)
        if planned is not None and planned.gateway is not None and planned.appliance is not None:
            yield role, planned


def expected_route_tables(network: NetworkLayout, facts: ApplianceFacts, release: ReleaseChoice) -> list[str]:
    """The route-tables.cfg lines ``release``'s first boot writes for this plan: per routed network its
    gateway line and (v0.1.9 and later) its link-scoped line, with the MAC of the NIC that carries it."""
    lines = []
    for role, planned in _routed(network):
        interface = (facts.interfaces or {}).get(role)
        mac = interface.mac if interface else f"<mac of {role}>"
        lines += release.release.route_table_lines(TABLE_IDS[role], role, mac, str(planned.appliance),
                                                   str(planned.gateway))
    return lines


def _as(release: ReleaseChoice) -> str:
    """How an expectation names the release it comes from."""
    return f"as {release.release} writes it" + (f" ({release.assumption})" if release.assumption else "")


def _table_named(table: str, role: str) -> bool:
    return table in (f"rtctl_{role}", TABLE_IDS[role])


def _route_table_problems(network: NetworkLayout, facts: ApplianceFacts, release: ReleaseChoice) -> list[str]:
    rel = release.release
    entries = facts.route_tables or []
    problems = [f"{shown(e.line)} {e.problem}" for e in entries if e.problem]
    if not rel.link_scoped_lines:
        problems += [f"{shown(e.line)} has 4 fields: {rel} reads only <TableID>,<TableName>,<MACAddress>,<CIDR>,"
                     f"<Gateway4> lines" for e in entries if not e.problem and e.link_scoped]
    usable = [e for e in entries if not e.problem]
    macs = {i.mac: name for name, i in (facts.interfaces or {}).items()}
    routed = dict(_routed(network))
    for role, planned in routed.items():
        for link_scoped in (False, True) if rel.link_scoped_lines else (False,):
            kind = "link-scoped line" if link_scoped else "gateway line"
            mine = [e for e in usable if e.name == role and e.link_scoped == link_scoped]
            if not mine:
                problems.append(f"no {kind} for the {role} network" + (
                    f" ({rel}'s first boot writes one: without it {rel}'s table lacks the route to the {role} "
                    f"network itself, so replies to its hosts go through the gateway)" if link_scoped else ""))
                continue
            entry = mine[0]
            if entry.table_id != TABLE_IDS[role]:
                problems.append(f"the {role} {kind}'s table id is {entry.table_id}, the appliance uses {TABLE_IDS[role]}")
            if macs and macs.get(entry.mac) != role:
                holder = macs.get(entry.mac)
                problems.append(f"MAC {entry.mac} of the {role} {kind} belongs to "
                                f"{'interface ' + holder if holder else 'no interface'}, not to {role}")
            if entry.cidr != str(planned.appliance):
                problems.append(f"the {role} {kind}'s address is {entry.cidr}, the plan's {planned.appliance}")
            if not link_scoped and entry.gateway != str(planned.gateway):
                problems.append(f"the {role} {kind}'s gateway is {entry.gateway}, the plan's {planned.gateway}")
    for entry in usable:
        if entry.name not in routed:
            problems.append(f"{shown(entry.line)} is for a network the plan routes no table for")
    wanted = expected_route_tables(network, facts, release)
    if not problems and [e.line for e in entries] != wanted:
        problems.append("the lines are not the ones first boot writes, in its order" if sorted(
            e.line for e in entries) == sorted(wanted) else "it holds a line the plan does not write, twice")
    return problems


_ERROR = re.compile(r"^(Error: |RTNETLINK answers: |Cannot find device|Object \"|.*: unbound variable|.*: invalid number|"
                    r"ValueError: |.*No such file or directory)")


def _route_tables_unit(facts: ApplianceFacts) -> Check:
    check, expected = ROUTE_TABLES_UNIT, "active"
    if facts.route_tables_state is None:
        return _not_read(check, expected, _reason(facts, ROUTE_TABLES_UNIT, ""))
    if facts.route_tables_state == "active":
        return Check(check, expected, "active", "ok")
    found, doing = facts.route_tables_state, ""
    for said in _last_start(facts.route_tables_log):
        if _ERROR.match(said):
            found = f"{facts.route_tables_state}: '{said}'" + (f" after '{doing}'" if doing else "")
        else:
            doing = said.removeprefix("create route with cmd: ")
    return Check(check, expected, found, "failed",
                 "route-tables.service stops at the first command of route-tables.cfg that fails, and its stop then "
                 "removes what it had made (`journalctl -u route-tables.service`): a line whose address or MAC is not "
                 "the appliance's is the usual cause; the repair stage rewrites the file from the plan.")


def _route_tables(network: NetworkLayout, facts: ApplianceFacts, release: ReleaseChoice) -> list[Check]:
    check = ROUTE_TABLES_FILE
    wanted = expected_route_tables(network, facts, release)
    expected = ("; ".join(wanted) or "no line") + f" ({_as(release)})"
    if facts.route_tables is None:
        return [_not_read(check, expected, _reason(facts, ROUTE_TABLES_FILE, ""))]
    found = "; ".join(shown(e.line) for e in facts.route_tables) or "no line"
    problems = _route_table_problems(network, facts, release)
    rows = [_route_tables_unit(facts),
            Check(check, expected, found, "failed" if problems else "ok",
                  ("; ".join(problems) + ". The repair stage rewrites the file from the plan and rebuilds the "
                   "routing tables.") if problems else "")]
    for role, planned in _routed(network):
        rows += [_table_routes_row(role, planned, facts, release), _rule_row(role, planned, facts, release)]
    return rows + _workload_networks(network, facts, release)


def _table_routes_row(role: str, planned, facts: ApplianceFacts, release: ReleaseChoice) -> Check:
    rel = release.release
    check = f"routing table rtctl_{role} ({TABLE_IDS[role]})"
    default = Route("default", "unicast", role, str(planned.gateway), "static")
    link = Route(str(planned.appliance.cidr), "unicast", role, "", "kernel", "link", str(planned.appliance.ip))
    wanted = [default] + ([link] if rel.link_scoped_lines else [])
    expected = "; ".join(str(r) for r in wanted) + (f" ({release.assumption})" if release.assumption else "")
    held = facts.table_routes.get(role)
    if held is None:
        return _not_read(check, expected, _reason(facts, f"rtctl_{role}", "not read"))
    found = "; ".join(str(r) for r in held) or "empty"
    has_default = any(r.dst == "default" and r.gateway == default.gateway and r.dev == role for r in held)
    has_link = any(r.dst == link.dst and r.dev == role and r.scope == "link" and r.source == link.source for r in held)
    if has_default and (has_link or not rel.link_scoped_lines):
        return Check(check, expected, found, "ok")
    missing = ([] if has_default else [f"the default route via {planned.gateway}"]) + (
        [] if has_link or not rel.link_scoped_lines else
        [f"the link-scoped route to {link.dst} (replies to hosts on the {role} network go through the gateway "
         f"without it)"])
    return Check(check, expected, found, "failed",
                 f"the table lacks {' and '.join(missing)}: route-tables.service did not make them from "
                 f"route-tables.cfg (see its row); the repair stage rebuilds the table from the plan.")


def _rule_row(role: str, planned, facts: ApplianceFacts, release: ReleaseChoice) -> Check:
    rel = release.release
    check = f"rule for rtctl_{role}"
    expected = f"from {planned.appliance} lookup rtctl_{role}"
    if facts.rules is None:
        return _not_read(check, expected, _reason(facts, "rules", ""))
    count = sum(1 for r in facts.rules if r.source == str(planned.appliance) and r.destination == "all"
                and _table_named(r.table, role))
    if not count:
        return Check(check, expected, "missing", "failed",
                     f"traffic from {planned.appliance.ip} does not use its own gateway: route-tables.service did "
                     f"not add the rule (see its row); the repair stage rebuilds the tables from the plan.")
    if count == 1:
        return Check(check, expected, "present", "ok")
    usual = rel.rules_per_table()
    if count == usual:
        why = f"{rel}'s route-tables.service adds one per line of route-tables.cfg, {usual} per table"
    elif not rel.down_deletes_rules:
        why = f"identical rules: {rel}'s route-tables.service deletes none when it stops, so each restart adds them again"
    else:
        why = f"identical rules, more than the {usual} {rel}'s first boot adds"
    return Check(check, expected, f"present {count} times ({why}; routing is the same as with one)", "ok")


def _workload_networks(network: NetworkLayout, facts: ApplianceFacts, release: ReleaseChoice) -> list[Check]:
    rel, wanted = release.release, network.additional_workload_networks
    if not rel.additional_workload_networks:
        if not wanted:
            return []
        return [Check("additional workload networks", ", ".join(wanted), f"release {rel} has none", "failed",
                      f"appliance {rel} cannot route further workload networks (v0.2.0 and later can): deploy the "
                      f"v0.2.0 OVA, or remove haproxy.additional_workload_networks from the site.")]
    check = WORKLOAD_NETWORKS_FILE
    expected = ", ".join(wanted) or "no line (no additional workload networks)"
    rows = []
    if facts.workload_networks is None:
        rows.append(_not_read(check, expected, _reason(facts, WORKLOAD_NETWORKS_FILE, "")))
    else:
        found_lines = list(facts.workload_networks.lines)
        found = ", ".join(shown(line) for line in found_lines) or "no line"
        if found_lines == wanted and not facts.workload_networks.unread:
            rows.append(Check(check, expected, found, "ok"))
        else:
            missing = [n for n in wanted if n not in found_lines]
            extra = [n for n in found_lines if n not in wanted]
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"not in the plan: {', '.join(shown(n) for n in extra)}"] if extra else []) + (
                [f"{facts.workload_networks.unread!r} has no line break after it, so routetablectl.sh never reads it"]
                if facts.workload_networks.unread else [])
            rows.append(Check(check, expected, found, "failed",
                              f"{'; '.join(parts) or 'the same networks in another order'}. The repair stage "
                              f"rewrites the file from the site's haproxy.additional_workload_networks and rebuilds "
                              f"the routing tables."))
    for cidr in wanted:
        check, expected = f"rule to {cidr}", f"to {cidr} lookup rtctl_workload"
        if facts.rules is None:
            rows.append(_not_read(check, expected, _reason(facts, "rules", "")))
            continue
        count = sum(1 for r in facts.rules if r.destination == cidr and _table_named(r.table, "workload"))
        if count:
            rows.append(Check(check, expected, "present" if count == 1 else
                              f"present {count} times (identical rules pile up on each restart of {rel}'s "
                              f"route-tables.service; routing is the same as with one)", "ok"))
        else:
            rows.append(Check(check, expected, "missing", "failed",
                              f"traffic to {cidr} leaves by the management network's default route, not the workload "
                              f"gateway: route-tables.service adds the rule from workload-networks.cfg (see its row); "
                              f"the repair stage restores the file and the rule."))
    return rows


def _release_row(release: ReleaseChoice) -> Check:
    expected = f"a release tkgs-runbook knows ({', '.join(KNOWN)})"
    found = f"{release.found or 'unknown'} ({release.source})"
    if release.known:
        return Check("appliance release", expected, found, "ok")
    return Check("appliance release", expected, found, "warning", release.warning())


def _gateways(network: NetworkLayout, facts: ApplianceFacts) -> list[Check]:
    rows = []
    for role, planned in network.networks.items():
        if planned.gateway is None:
            continue
        check, expected = f"gateway {planned.gateway} from {role}", "answers"
        if facts.pings.get(role) is None:  # no such interface, or the ping could not run: not an answer either way
            why = _reason(facts, f"ping {role}", f"no interface {role}")
            rows.append(_not_read(check, expected, why))
        elif facts.pings[role]:
            rows.append(Check(check, expected, "answers", "ok"))
        else:
            rows.append(Check(check, expected, "no answer", "failed",
                              f"nothing answers at {planned.gateway} on the {role} network: check the "
                              f"{planned.portgroup} port group's VLAN ({planned.vlan}) and uplinks, and the "
                              f"gateway on your router (the article: all three networks must be routable)."))
    return rows


def appliance_checks(network: NetworkLayout, facts: ApplianceFacts,
                     release: Optional[ReleaseChoice] = None) -> list[Check]:
    """Every check of the appliance itself, in the article's order, judged by what ``release``'s first
    boot and units make (the article's v0.1.10 when none is given, with a warning saying so)."""
    release = release or NO_RELEASE_GIVEN
    anyip = [_anyip_unit(network, facts), _anyip_file(network, facts), *_local_routes(network, facts)]
    return [_release_row(release), *_interface_checks(network, facts), _failed_units(facts),
            *_made_by(ANYIP_UNIT, anyip), *_stale_local_routes(network, facts),
            *_made_by(ROUTE_TABLES_UNIT, _route_tables(network, facts, release)),
            *_gateways(network, facts)]


def _made_by(unit: str, checks: list[Check]) -> list[Check]:
    return [dataclasses.replace(c, unit=unit) for c in checks]
