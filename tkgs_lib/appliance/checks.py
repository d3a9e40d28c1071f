"""The article's "Checking HA Proxy", as pure functions of the appliance's facts and the network plan.

Each check is one row: what is checked, what the plan expects, what the appliance holds, its
status (ok, failed, not checked) and, for a failure, the fix with its likely cause. The facts
are gathered once (:func:`gather_appliance_facts`, through any CommandRunner); every check reads
only them, so each is tested on recorded output with no appliance at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Optional

import netaddr

from ..errors import ApplianceError
from ..site.network import NetworkPlan
from ..tables import Table
from .commands import CommandRunner, gather
from .facts import (ANYIP_FILE, ANYIP_UNIT, FAILED_UNITS, INTERFACES, INTERFACES_TEXT, ROUTE_TABLES_FILE, RULES,
                    Interface, Route, RouteTableEntry, Rule, anyip_unit, config_file, ping, route_tables_file, routes,
                    unit_log)

__all__ = ["Check", "ApplianceFacts", "gather_appliance_facts", "appliance_checks", "checks_table", "expected_route_tables",
           "TABLE_IDS"]

Status = Literal["ok", "failed", "not checked"]
TABLE_IDS = {"workload": "2", "frontend": "3"}  # what the appliance's first boot writes


@dataclass(frozen=True)
class Check:
    check: str
    expected: str
    found: str
    status: Status
    fix: str = ""

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
    anyip_lines: Optional[list[str]] = None
    local_routes: Optional[list[Route]] = None
    route_tables: Optional[list[RouteTableEntry]] = None
    rules: Optional[list[Rule]] = None
    table_routes: dict[str, list[Route]] = field(default_factory=dict)  # rtctl_<name> → its routes
    pings: dict[str, bool] = field(default_factory=dict)  # role → the gateway answered from its interface
    problems: dict[str, str] = field(default_factory=dict)  # fact → why it could not be read


def _read(facts: ApplianceFacts, runner: CommandRunner, name: str, fact):
    try:
        return gather(runner, fact)
    except ApplianceError as exc:
        facts.problems[name] = exc.message
        return None


def gather_appliance_facts(runner: CommandRunner, network: NetworkPlan) -> ApplianceFacts:
    """Every fact the checks read, each one command through ``runner``."""
    facts = ApplianceFacts()
    try:
        facts.interfaces = gather(runner, INTERFACES)
    except ApplianceError:  # an ip without JSON output: the article's text form
        facts.interfaces = _read(facts, runner, "interfaces", INTERFACES_TEXT)
    facts.failed_units = _read(facts, runner, "failed units", FAILED_UNITS)
    facts.anyip_state = _read(facts, runner, ANYIP_UNIT, anyip_unit())
    facts.anyip_log = _read(facts, runner, f"{ANYIP_UNIT} log", unit_log(ANYIP_UNIT)) or []
    facts.anyip_lines = _read(facts, runner, ANYIP_FILE, config_file(ANYIP_FILE))
    facts.local_routes = _read(facts, runner, "local routes", routes("local"))
    facts.route_tables = _read(facts, runner, ROUTE_TABLES_FILE, route_tables_file())
    facts.rules = _read(facts, runner, "rules", RULES)
    for entry in facts.route_tables or ():
        if entry.name and not entry.problem:
            table = f"rtctl_{entry.name}"
            facts.table_routes[table] = _read(facts, runner, table, routes(table)) or []
    for role, planned in network.networks.items():
        if planned.gateway is not None and facts.interfaces and role in facts.interfaces:
            facts.pings[role] = bool(_read(facts, runner, f"ping {role}", ping(role, str(planned.gateway))))
    return facts


# --- the checks -----------------------------------------------------------------------------------

def _not_read(check: str, expected: str, why: str) -> Check:
    return Check(check, expected, f"could not be read: {why}", "not checked", "")


def _interface_checks(network: NetworkPlan, facts: ApplianceFacts) -> list[Check]:
    rows = []
    for role, planned in network.networks.items():
        check, expected = f"interface {role}", f"{planned.appliance}, up"
        if facts.interfaces is None:
            rows.append(_not_read(check, expected, facts.problems.get("interfaces", "")))
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
        return _not_read(check, expected, facts.problems.get("failed units", ""))
    if not facts.failed_units:
        return Check(check, expected, "none", "ok")
    return Check(check, expected, ", ".join(facts.failed_units), "failed",
                 "see the rows of each unit below; after fixing, `systemctl restart` it and check again.")


_INVALID = ("RTNETLINK answers: Invalid argument", "Error: Invalid prefix for given prefix length.")


def _anyip_unit(facts: ApplianceFacts) -> Check:
    check, expected = ANYIP_UNIT, "active"
    if facts.anyip_state is None:
        return _not_read(check, expected, facts.problems.get(ANYIP_UNIT, ""))
    if facts.anyip_state == "active":
        return Check(check, expected, "active", "ok")
    found, fix = facts.anyip_state, "read its log: `journalctl -u anyip-routes.service`."
    last = ""
    for line in facts.anyip_log:  # the last attempt counts: the log holds every start since boot
        added = re.search(r"adding route for (\S+)", line)
        if added:
            last = added.group(1)
        elif last and any(error in line for error in _INVALID):
            said = next(e for e in _INVALID if e in line)
            found = f"{facts.anyip_state}: '{said}' on the line {last}"
            fix = (f"{last} has host bits set, so the kernel refuses it and every range after it is never served: "
                   f"write {_network_of(last)} (its network address) in /etc/vmware/anyip-routes.cfg; the repair "
                   f"stage does it safely (stop, replace, start).")
        elif last and "File exists" in line:
            found = f"{facts.anyip_state}: 'File exists' on the line {last}"
            fix = (f"a route for {last} already exists on another device (an address or range that overlaps it): "
                   f"remove that route, or give the appliance a range no one else holds.")
    return Check(check, expected, found, "failed", fix)


def _network_of(line: str) -> str:
    try:
        return str(netaddr.IPNetwork(line).cidr)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return "a network address"


def _anyip_file(network: NetworkPlan, facts: ApplianceFacts) -> Check:
    check = ANYIP_FILE
    expected = ", ".join(network.load_balancer_lines) or "no range"
    if facts.anyip_lines is None:
        return _not_read(check, expected, facts.problems.get(ANYIP_FILE, ""))
    found = ", ".join(facts.anyip_lines) or "no range"
    if facts.anyip_lines == network.load_balancer_lines:
        return Check(check, expected, found, "ok")
    missing = [line for line in network.load_balancer_lines if line not in facts.anyip_lines]
    extra = [line for line in facts.anyip_lines if line not in network.load_balancer_lines]
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"not in the plan: {', '.join(extra)}"]
                                                                      if extra else [])
    why = "; ".join(parts) or "the same ranges in another order"
    return Check(check, expected, found, "failed",
                 f"{why}. The ranges Workload Management will be given must all be served: the repair stage "
                 f"rewrites the file from the site's haproxy.load_balancer_ranges.")


def _local_routes(network: NetworkPlan, facts: ApplianceFacts) -> list[Check]:
    rows = []
    if facts.local_routes is None:
        return [_not_read("local routes (ip route show table local)", "one per range",
                          facts.problems.get("local routes", ""))]
    held = set()
    for route in facts.local_routes:
        if route.type == "local" and route.dev == "lo":
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


def expected_route_tables(network: NetworkPlan, facts: ApplianceFacts) -> list[str]:
    """The route-tables.cfg lines the appliance writes at first boot for this plan: the workload and,
    under frontend, the frontend network, each with the MAC of the interface that carries it."""
    lines = []
    for role in ("workload", "frontend"):
        planned = network.networks.get(role)
        if planned is None or planned.gateway is None or planned.appliance is None:
            continue
        interface = (facts.interfaces or {}).get(role)
        mac = interface.mac if interface else "<mac of " + role + ">"
        lines.append(f"{TABLE_IDS[role]},{role},{mac},{planned.appliance},{planned.gateway}")
    return lines


def _route_tables(network: NetworkPlan, facts: ApplianceFacts) -> list[Check]:
    check = ROUTE_TABLES_FILE
    wanted = expected_route_tables(network, facts)
    expected = "; ".join(wanted) or "no line"
    if facts.route_tables is None:
        return [_not_read(check, expected, facts.problems.get(ROUTE_TABLES_FILE, ""))]
    found = "; ".join(e.line for e in facts.route_tables) or "no line"
    problems = [f"'{e.line}' {e.problem}" for e in facts.route_tables if e.problem]
    by_name = {e.name: e for e in facts.route_tables if not e.problem}
    macs = {i.mac: name for name, i in (facts.interfaces or {}).items()}
    for role in ("workload", "frontend"):
        planned = network.networks.get(role)
        if planned is None or planned.gateway is None:
            continue
        entry = by_name.get(role)
        if entry is None:
            problems.append(f"no line for the {role} network")
            continue
        if entry.table_id != TABLE_IDS[role]:
            problems.append(f"the {role} table id is {entry.table_id}, the appliance uses {TABLE_IDS[role]}")
        if macs and macs.get(entry.mac) != role:
            holder = macs.get(entry.mac)
            problems.append(f"MAC {entry.mac} of the {role} line belongs to "
                            f"{'interface ' + holder if holder else 'no interface'}, not to {role}")
        if entry.cidr != str(planned.appliance):
            problems.append(f"the {role} line's network is {entry.cidr}, the plan's {planned.appliance}")
        if entry.gateway != str(planned.gateway):
            problems.append(f"the {role} line's gateway is {entry.gateway}, the plan's {planned.gateway}")
    rows = [Check(check, expected, found, "failed" if problems else "ok",
                  ("; ".join(problems) + ". The repair stage rewrites the file from the plan.") if problems else "")]
    for role, entry in by_name.items():
        table = f"rtctl_{role}"
        table_routes = facts.table_routes.get(table, [])
        route_ok = any(r.dst == "default" and r.gateway == entry.gateway and r.dev == role for r in table_routes)
        rows.append(Check(f"routing table {table}", f"default via {entry.gateway} dev {role}",
                          "; ".join(f"{r.dst} via {r.gateway or '-'} dev {r.dev}" for r in table_routes) or "empty",
                          "ok" if route_ok else "failed",
                          "" if route_ok else "restart route-tables.service once its file is right."))
        rule_ok = any(r.table == table and r.source == entry.cidr for r in facts.rules or ())
        rows.append(Check(f"rule for {table}", f"from {entry.cidr} lookup {table}",
                          "present" if rule_ok else "missing", "ok" if rule_ok else "failed",
                          "" if rule_ok else "restart route-tables.service once its file is right."))
    return rows


def _gateways(network: NetworkPlan, facts: ApplianceFacts) -> list[Check]:
    rows = []
    for role, planned in network.networks.items():
        if planned.gateway is None:
            continue
        check, expected = f"gateway {planned.gateway} from {role}", "answers"
        if role not in facts.pings:
            rows.append(_not_read(check, expected, facts.problems.get(f"ping {role}", f"no interface {role}")))
        elif facts.pings[role]:
            rows.append(Check(check, expected, "answers", "ok"))
        else:
            rows.append(Check(check, expected, "no answer", "failed",
                              f"nothing answers at {planned.gateway} on the {role} network: check the "
                              f"{planned.portgroup} port group's VLAN ({planned.vlan}) and uplinks, and the "
                              f"gateway on your router (the article: all three networks must be routable)."))
    return rows


def appliance_checks(network: NetworkPlan, facts: ApplianceFacts) -> list[Check]:
    """Every check of the appliance itself, in the article's order."""
    return [*_interface_checks(network, facts), _failed_units(facts), _anyip_unit(facts),
            _anyip_file(network, facts), *_local_routes(network, facts), *_route_tables(network, facts),
            *_gateways(network, facts)]
