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
           "FAILED_UNITS"]


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
