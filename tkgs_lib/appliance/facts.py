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
           "parse_config_lines", "ConfigText", "shown", "anyip_unit", "unit_state", "unit_log", "config_file", "route_tables_file", "routes", "RULES",
           "ping", "AddressProbe", "parse_address_probe", "address_in_use", "ANYIP_UNIT", "ROUTE_TABLES_UNIT",
           "ANYIP_FILE", "ROUTE_TABLES_FILE"]


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


@dataclass(frozen=True)
class ConfigText:
    """A line-per-entry file of the appliance as its scripts read it (``while IFS= read -r line``):
    every line as it is, nothing stripped; a line is skipped only when empty or when its first
    character is ``#``; text after the last line break is no line at all (``read`` fails on it)."""

    lines: tuple[str, ...]
    unread: str = ""  # text after the last line break, which the appliance's script never reads


def parse_config_lines(text: str) -> ConfigText:
    """A line-per-entry file as the appliance's scripts read it (see :class:`ConfigText`)."""
    *complete, tail = text.split("\n")
    return ConfigText(tuple(line for line in complete if line and not line.startswith("#")), tail)


def shown(line: str) -> str:
    """A file's line as a finding shows it: quoted and escaped when it holds anything but printable
    characters and single inner spaces (a trailing space, a tab, a carriage return...)."""
    plain = line == line.strip() and "  " not in line and all(c.isprintable() for c in line)
    return line if plain else repr(line)


@dataclass(frozen=True)
class RouteTableEntry:
    """A line of route-tables.cfg, split on commas as ``IFS=, read -ra`` splits it (nothing stripped):
    ``<TableID>,<TableName>,<MACAddress>,<CIDR>`` and, on a gateway line, ``,<Gateway4>``."""

    line: str
    fields: tuple[str, ...]
    problem: str = ""  # why the appliance's script cannot use the line, whatever the release

    @property
    def table_id(self) -> str:
        return self.fields[0] if self.fields else ""

    @property
    def name(self) -> str:
        return self.fields[1] if len(self.fields) > 1 else ""

    @property
    def mac(self) -> str:
        return self.fields[2].lower() if len(self.fields) > 2 else ""

    @property
    def cidr(self) -> str:
        return self.fields[3] if len(self.fields) > 3 else ""

    @property
    def gateway(self) -> str:
        return self.fields[4] if len(self.fields) == 5 else ""

    @property
    def link_scoped(self) -> bool:
        """A four-field line: the link-scoped route of the network (v0.1.9 and later)."""
        return len(self.fields) == 4


_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def parse_route_tables(text: str) -> list[RouteTableEntry]:
    entries = []
    for line in parse_config_lines(text).lines:
        parts = line.split(",")
        if parts and parts[-1] == "":  # read -a drops one trailing empty field
            parts = parts[:-1]
        fields = tuple(parts)
        problem = ""
        if len(fields) < 4 or len(fields) > 5:
            problem = (f"has {len(fields)} fields, not 4 or 5 (<TableID>,<TableName>,<MACAddress>,<CIDR>"
                       f"[,<Gateway4>])")
        elif any(f != f.strip() for f in fields):
            problem = "has white space around a field, which the appliance's script keeps as part of the value"
        elif not fields[0].isdigit():
            problem = f"table id {fields[0]!r} is not a number"
        elif not _MAC.fullmatch(fields[2]):
            problem = f"{fields[2]!r} is not a MAC address"
        entries.append(RouteTableEntry(line, fields, problem))
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
    protocol: str = ""  # static, kernel, boot...
    scope: str = ""  # link, host, or "" (global)
    source: str = ""  # the preferred source address (ip's "src", JSON "prefsrc")

    def __str__(self) -> str:
        words = [self.dst] + (["via", self.gateway] if self.gateway else []) + ["dev", self.dev]
        words += (["proto", self.protocol] if self.protocol else []) + (["scope", self.scope] if self.scope else [])
        return " ".join(words + (["src", self.source] if self.source else []))


def parse_routes(text: str) -> list[Route]:
    """``ip -j route show table ...``."""
    return [Route(str(r.get("dst", "")), str(r.get("type", "unicast")), str(r.get("dev", "")), str(r.get("gateway", "")),
                  str(r.get("protocol", "")), str(r.get("scope", "")), str(r.get("prefsrc", "")))
            for r in json.loads(text or "[]")]


@dataclass(frozen=True)
class Rule:
    source: str  # "all" or address/prefix as the kernel holds it
    table: str  # its name where rt_tables names it, else its number
    destination: str = "all"  # "all" or network/prefix (a `to` rule)


def parse_rules(text: str) -> list[Rule]:
    """``ip -j rule show``."""
    rules = []
    for r in json.loads(text or "[]"):
        source = str(r.get("src", "all"))
        if "srclen" in r:
            source = f"{source}/{r['srclen']}"
        destination = str(r.get("dst", "all"))
        if "dstlen" in r:
            destination = f"{destination}/{r['dstlen']}"
        rules.append(Rule(source, str(r.get("table", "")), destination))
    return rules


def unit_state(unit: str) -> Fact[str]:
    return Fact(f"the state of {unit}", f"systemctl is-active {unit}", parse_unit_state, ok_exit=(0, 3))


def anyip_unit() -> Fact[str]:
    return unit_state(ANYIP_UNIT)


def unit_log(unit: str, lines: int = 30) -> Fact[list[str]]:
    return Fact(f"the log of {unit}", f"journalctl -u {unit} -n {lines} --no-pager", parse_log)


def config_file(path: str, missing_is_empty: bool = False) -> Fact[ConfigText]:
    """A file read as the appliance's scripts read it; ``missing_is_empty``: a file the appliance
    may lack (``cat`` exits 1), read as one without lines."""
    return Fact(path, f"cat {path}", parse_config_lines, ok_exit=(0, 1) if missing_is_empty else (0,))


def route_tables_file() -> Fact[list[RouteTableEntry]]:
    return Fact(ROUTE_TABLES_FILE, f"cat {ROUTE_TABLES_FILE}", parse_route_tables)


def routes(table: str) -> Fact[list[Route]]:
    """The routes of one table, by name or number (``ip -j route show table 2``: by number, a table is
    read even where rt_tables does not name it, as after a failed route-tables.service)."""
    return Fact(f"the routes of table {table}", f"ip -j route show table {table}", parse_routes,
                empty_when="FIB table does not exist")  # a table no route was ever added to


RULES = Fact("the routing rules", "ip -j rule show", parse_rules)


def ping(interface: str, address: str) -> Fact[bool]:
    """Whether ``address`` answers one ping sent from ``interface`` (exit 1: no answer)."""
    return Fact(f"a ping of {address} from {interface}", f"ping -c 1 -W 2 -I {interface} {address}",
                lambda text: " 0% packet loss" in text, ok_exit=(0, 1))


@dataclass(frozen=True)
class AddressProbe:
    """Whether an address already answers on a network the appliance sits on, and how it was asked."""

    address: str
    answered: bool
    by: str  # "ARP" (a duplicate-address probe), or "ping" where the appliance has no arping
    mac: str = ""  # who answered an ARP probe, lower case

    def __str__(self) -> str:
        if not self.answered:
            return f"{self.address}: no answer to {self.by}"
        return f"{self.address} answered {self.by}" + (f" from {self.mac}" if self.mac else "")


_ARP_REPLY = re.compile(r"reply from (\S+) \[([0-9A-Fa-f:]{17})\]")
_ARP_RECEIVED = re.compile(r"^Received (\d+) response", re.MULTILINE)
_PING_RECEIVED = re.compile(r"(\d+) (?:packets )?received")


def parse_address_probe(address: str, text: str) -> AddressProbe:
    """iputils' ``arping -D`` (ARPING ..., Unicast reply from <address> [<MAC>], Received <n> response(s)),
    or ``ping`` (<n> packets transmitted, <m> received) where the appliance has no arping."""
    if text.lstrip().startswith("ARPING"):
        received = _ARP_RECEIVED.search(text)
        if received is None:
            raise ValueError("arping printed no 'Received N response(s)' line")
        reply = _ARP_REPLY.search(text)
        return AddressProbe(address, int(received.group(1)) > 0, "ARP", reply.group(2).lower() if reply else "")
    received = _PING_RECEIVED.search(text)
    if not text.lstrip().startswith("PING") or received is None:
        raise ValueError("neither arping's nor ping's output")
    return AddressProbe(address, int(received.group(1)) > 0, "ping")


def address_in_use(interface: str, address: str) -> Fact[AddressProbe]:
    """Whether ``address`` already answers on ``interface``'s network: an ARP duplicate-address probe
    (``arping -D``, source 0.0.0.0, so nothing learns the appliance has it; exit 1: a reply came), which a
    host that drops ping answers too; ``ping`` where the appliance has no arping. The appliance's OS image
    at v0.1.10 installs Photon's iputils (``ansible/roles/common/defaults/main.yml``,
    ``common_photon_rpms``), whose package holds arping (vmware/photon ``SPECS/iputils/iputils.spec``)."""
    command = (f"if command -v arping >/dev/null 2>&1; then arping -D -c 1 -w 1 -I {interface} {address}; "
               f"else ping -c 1 -W 1 -I {interface} {address}; fi")
    return Fact(f"whether {address} answers on {interface}", command,
                lambda text: parse_address_probe(address, text), ok_exit=(0, 1))
