"""The appliance's facts: a command each, and a pure parser of what it prints.

The parsers are tested on recorded output (the article's own ``ip a``, a real ``ip -j addr``),
with no appliance at all; the verify stage gathers them through an SSH runner.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .commands import Fact

__all__ = ["Interface", "parse_ip_json", "parse_ip_text", "parse_failed_units", "INTERFACES", "INTERFACES_TEXT",
           "FAILED_UNITS", "RouteTableEntry", "Route", "Rule", "parse_route_tables", "parse_routes", "parse_rules",
           "parse_config_lines", "anyip_unit", "unit_log", "config_file", "route_tables_file", "routes", "RULES",
           "ping", "ANYIP_UNIT", "ROUTE_TABLES_UNIT", "ANYIP_FILE", "ROUTE_TABLES_FILE"]


@dataclass(frozen=True)
class Interface:
    name: str  # as the appliance names it: management, workload, frontend (a veth's @ifN dropped)
    mac: str  # lower case, aa:bb:...
    flags: tuple[str, ...]  # UP, LOWER_UP, ...
    operstate: str  # UP, DOWN, UNKNOWN
    addresses: tuple[str, ...]  # IPv4 address/prefix, e.g. 10.64.2.10/23

    @property
    def up(self) -> bool:
        """Administratively up with a carrier (a loopback reports its state as UNKNOWN)."""
        return "UP" in self.flags and self.operstate in ("UP", "UNKNOWN")


def parse_ip_json(text: str) -> dict[str, Interface]:
    """``ip -j addr show`` (iproute2 4.14 and later): every interface by name, with its IPv4 addresses."""
    interfaces = {}
    for entry in json.loads(text or "[]"):
        name = entry["ifname"].split("@", 1)[0]
        addresses = tuple(f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", [])
                          if a.get("family") == "inet")
        interfaces[name] = Interface(name, str(entry.get("address", "")).lower(), tuple(entry.get("flags", ())),
                                     str(entry.get("operstate", "UNKNOWN")), addresses)
    return interfaces


_HEADER = re.compile(r"^\d+:\s+(?P<name>[^:@\s]+)(?:@[^:\s]+)?:\s+<(?P<flags>[^>]*)>(?P<rest>.*)$")
_STATE = re.compile(r"\bstate\s+(\S+)")
_LINK = re.compile(r"^\s+link/\S+\s+(?P<mac>[0-9a-fA-F:]+)")
_INET = re.compile(r"^\s+inet\s+(?P<address>\d+\.\d+\.\d+\.\d+/\d+)\b")


def parse_ip_text(text: str) -> dict[str, Interface]:
    """``ip a`` as the article shows it (an appliance whose ``ip`` has no JSON output)."""
    interfaces: dict[str, Interface] = {}
    current = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            state = _STATE.search(header["rest"])
            current = {"name": header["name"], "flags": tuple(f for f in header["flags"].split(",") if f),
                       "operstate": state.group(1) if state else "UNKNOWN", "mac": "", "addresses": []}
            interfaces[current["name"]] = current  # type: ignore[assignment]
            continue
        if current is None:
            if line.strip():
                raise ValueError(f"a line before any interface: {line.strip()[:60]!r}")
            continue
        link, inet = _LINK.match(line), _INET.match(line)
        if link and not current["mac"]:
            current["mac"] = link["mac"].lower()
        elif inet:
            current["addresses"].append(inet["address"])
    return {name: Interface(d["name"], d["mac"], d["flags"], d["operstate"], tuple(d["addresses"]))  # type: ignore[index]
            for name, d in interfaces.items()}


def parse_failed_units(text: str) -> list[str]:
    """``systemctl list-units --state failed --plain --no-legend``: the failed units' names."""
    units = []
    for line in text.splitlines():
        words = line.replace("●", " ").split()
        if words:
            units.append(words[0])
    return units


INTERFACES = Fact("the interfaces", "ip -j addr show", parse_ip_json)
INTERFACES_TEXT = Fact("the interfaces", "ip addr show", parse_ip_text)  # for an ip without -j
FAILED_UNITS = Fact("the failed units", "systemctl list-units --state failed --plain --no-legend --no-pager",
                    parse_failed_units)


# --- the appliance's own files and units ----------------------------------------------------------

ANYIP_UNIT, ROUTE_TABLES_UNIT = "anyip-routes.service", "route-tables.service"
ANYIP_FILE, ROUTE_TABLES_FILE = "/etc/vmware/anyip-routes.cfg", "/etc/vmware/route-tables.cfg"


def parse_config_lines(text: str) -> list[str]:
    """A line-per-entry file of the appliance: its lines, comments and blank lines left out."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


@dataclass(frozen=True)
class RouteTableEntry:
    line: str
    table_id: str = ""
    name: str = ""
    mac: str = ""
    cidr: str = ""
    gateway: str = ""
    problem: str = ""  # why the line is not <TableID>,<TableName>,<MACAddress>,<CIDR>,<Gateway4>


def parse_route_tables(text: str) -> list[RouteTableEntry]:
    entries = []
    for line in parse_config_lines(text):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            entries.append(RouteTableEntry(line, problem=f"has {len(parts)} fields, not 5 "
                                                           f"(<TableID>,<TableName>,<MACAddress>,<CIDR>,<Gateway4>)"))
            continue
        table_id, name, mac, cidr, gateway = parts
        problem = ""
        if not table_id.isdigit():
            problem = f"table id {table_id!r} is not a number"
        elif not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", mac):
            problem = f"{mac!r} is not a MAC address"
        entries.append(RouteTableEntry(line, table_id, name, mac.lower(), cidr, gateway, problem))
    return entries


def parse_unit_state(text: str) -> str:
    """``systemctl is-active``: active, failed, inactive..."""
    return (text.strip().splitlines() or ["unknown"])[0]


def parse_log(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class Route:
    dst: str  # "default", "10.64.1.0/24", "10.64.2.10"
    type: str  # unicast, local, broadcast...
    dev: str
    gateway: str = ""


def parse_routes(text: str) -> list[Route]:
    """``ip -j route show table ...``."""
    return [Route(str(r.get("dst", "")), str(r.get("type", "unicast")), str(r.get("dev", "")), str(r.get("gateway", "")))
            for r in json.loads(text or "[]")]


@dataclass(frozen=True)
class Rule:
    source: str  # "all" or address/prefix as the kernel holds it
    table: str


def parse_rules(text: str) -> list[Rule]:
    """``ip -j rule show``."""
    rules = []
    for r in json.loads(text or "[]"):
        source = str(r.get("src", "all"))
        if "srclen" in r:
            source = f"{source}/{r['srclen']}"
        rules.append(Rule(source, str(r.get("table", ""))))
    return rules


def anyip_unit() -> Fact[str]:
    return Fact(f"the state of {ANYIP_UNIT}", f"systemctl is-active {ANYIP_UNIT}", parse_unit_state, ok_exit=(0, 3))


def unit_log(unit: str, lines: int = 30) -> Fact[list[str]]:
    return Fact(f"the log of {unit}", f"journalctl -u {unit} -n {lines} --no-pager", parse_log)


def config_file(path: str) -> Fact[list[str]]:
    return Fact(path, f"cat {path}", parse_config_lines)


def route_tables_file() -> Fact[list[RouteTableEntry]]:
    return Fact(ROUTE_TABLES_FILE, f"cat {ROUTE_TABLES_FILE}", parse_route_tables)


def routes(table: str) -> Fact[list[Route]]:
    return Fact(f"the routes of table {table}", f"ip -j route show table {table}", parse_routes)


RULES = Fact("the routing rules", "ip -j rule show", parse_rules)


def ping(interface: str, address: str) -> Fact[bool]:
    """Whether ``address`` answers one ping sent from ``interface`` (exit 1: no answer)."""
    return Fact(f"a ping of {address} from {interface}", f"ping -c 1 -W 2 -I {interface} {address}",
                lambda text: " 0% packet loss" in text, ok_exit=(0, 1))
