"""The address plan: parse the site's networks and check every rule the article warns about.

Everything here is interval arithmetic on (first, last) integers: a /8 costs what a /24
costs, and no code ever enumerates a network's addresses. IPv4 only, as the appliance.
"""

from __future__ import annotations

import bisect
import heapq
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Optional, Union

import netaddr
from netaddr import IPAddress, IPNetwork, IPRange

from ..findings import Finding, settle_suggestions
from .model import Site
from .patterns import IPV4_TEXT

ROLES = ("management", "workload", "frontend")
# What the Supervisor takes, as the plan's allocations name it (the workload_management block's values)
SUPERVISOR_MANAGEMENT = "Supervisor management range"  # its 5 control-plane addresses
SUPERVISOR_VIPS = "Supervisor virtual IP range"  # what Workload Management gives the load balancer
SUPERVISOR_SERVICES = "Supervisor services range"  # Kubernetes services, routed inside the Supervisor only
MAX_RANGES = 4096  # of each kind: more than any appliance or Workload Management can use
Block = Union[IPNetwork, IPRange]


@dataclass
class PlannedNetwork:
    """One of the appliance's networks, as parsed; a value that failed to parse is None."""

    role: str
    vlan: Optional[int]
    portgroup: str
    network: Optional[IPNetwork]
    gateway: Optional[IPAddress]
    appliance: Optional[IPNetwork]  # the appliance's address with the network's prefix

    @property
    def path(self) -> str:
        return f"networks.{self.role}"

    @property
    def appliance_path(self) -> str:
        return f"haproxy.{self.role}_ip"


@dataclass(frozen=True)
class PlannedRange:
    """A range as the site wrote it (``text``), at field ``path``, and the addresses it holds."""

    path: str
    text: str
    block: Block

    @property
    def first(self) -> int:
        return self.block.first

    @property
    def last(self) -> int:
        return self.block.last


@dataclass
class Allocation:
    """An address or range the plan reserves, with the field that reserves it."""

    kind: str
    path: str
    first: IPAddress
    last: IPAddress
    role: str  # the network it lies in, or "" when outside every network
    text: str = ""  # as the site writes it: an address, first-last, or a CIDR block

    @property
    def is_range(self) -> bool:
        return self.kind.endswith("range")

    @property
    def span(self) -> str:
        """The range as written, with first-last beside a CIDR block: 10.64.1.0/24 (10.64.1.0-10.64.1.255)."""
        if not self.is_range:
            return self.text or str(self.first)
        first_last = f"{self.first}-{self.last}"
        written = self.text or first_last
        return written if written.replace(" ", "") == first_last else f"{written} ({first_last})"

    @property
    def count(self) -> int:
        return int(self.last) - int(self.first) + 1


@dataclass
class NetworkLayout:
    deployment: str
    networks: dict[str, PlannedNetwork]
    workload_ranges: list[PlannedRange] = field(default_factory=list)
    load_balancer_ranges: list[PlannedRange] = field(default_factory=list)
    load_balancer_lines: list[str] = field(default_factory=list)  # verbatim, as the appliance writes them
    additional_workload_networks: list[str] = field(default_factory=list)  # verbatim (v0.2.0's workload-networks.cfg)
    findings: list[Finding] = field(default_factory=list)
    # The Supervisor's settings (site.workload_management's SupervisorSettings), when the site has the block:
    # what it takes is taken here too (allocations, the blocks a fix suggests).
    supervisor: Optional[Any] = None

    @property
    def vip_role(self) -> str:
        """Where virtual IPs live: the frontend network, or the workload network under `default`."""
        return "frontend" if self.deployment == "frontend" else "workload"

    @property
    def shared_workload_frontend(self) -> bool:
        w, f = self.networks.get("workload"), self.networks.get("frontend")
        return bool(w and f and w.network is not None and w.network == f.network)

    def role_of(self, first: int, last: int) -> str:
        for role, net in self.networks.items():
            if net.network is not None and _within(first, last, net.network):
                return role
        return ""

    def allocations(self) -> list[Allocation]:
        """Every reserved address and range, in address order."""
        rows: list[Allocation] = []

        def add(kind: str, path: str, first: int, last: int, text: str) -> None:
            rows.append(Allocation(kind, path, IPAddress(first), IPAddress(last), self.role_of(first, last), text))

        for net in self.networks.values():
            if net.gateway is not None:
                add("gateway", f"{net.path}.gateway", int(net.gateway), int(net.gateway), str(net.gateway))
            if net.appliance is not None:
                address = int(net.appliance.ip)
                add("appliance address", net.appliance_path, address, address, str(net.appliance.ip))
        for r in self.workload_ranges:
            add("workload range", r.path, r.first, r.last, r.text)
        for r in self.load_balancer_ranges:
            add("load-balancer range", r.path, r.first, r.last, r.text)
        wm = self.supervisor
        if wm is not None:  # what the enable stage gives the Supervisor, from the workload_management block
            block = "workload_management"
            if wm.management is not None:
                m = wm.management
                add(SUPERVISOR_MANAGEMENT, f"{block}.supervisor_start", int(m.start), int(m.last), str(m.start))
            for r in wm.virtual_ip_ranges:  # null: the load-balancer ranges less network and broadcast addresses
                written = r.source.startswith(f"{block}.")
                add(SUPERVISOR_VIPS, r.source if written else f"{block}.virtual_ip_ranges", int(r.start), int(r.last),
                    r.text if written else "")
            if wm.services_cidr is not None:
                services = wm.services_cidr
                add(SUPERVISOR_SERVICES, f"{block}.services_cidr", services.first, services.last, str(services))
        return sorted(rows, key=lambda a: (int(a.first), int(a.last)))


# --- the small value operations ----------------------------------------------------------------

def _within(first: int, last: int, net: Block) -> bool:
    return net.first <= first and last <= net.last


def _overlaps(a: Block, b: Block) -> bool:
    return a.first <= b.last and b.first <= a.last


def _holds(block: Block, address: int) -> bool:
    return block.first <= address <= block.last


def _span(block: Block) -> str:
    if isinstance(block, IPNetwork):
        return str(block)
    return f"{block}" if block.first != block.last else str(IPAddress(block.first))


def range_to_cidrs(first: str | IPAddress, last: str | IPAddress) -> list[IPNetwork]:
    """The exact CIDR blocks that together cover first..last (logarithmic, no enumeration)."""
    return netaddr.iprange_to_cidrs(first, last)


def smallest_enclosing_cidr(first: str | IPAddress, last: str | IPAddress) -> IPNetwork:
    return netaddr.spanning_cidr([IPAddress(first), IPAddress(last)])


def usable_addresses(net: IPNetwork) -> int:
    """Host addresses of a network: all but network and broadcast (a /31 or /32 keeps all)."""
    return net.size - 2 if net.prefixlen <= 30 else net.size


# --- parsing, each with the finding that explains a failure ---------------------------------------

_PREFIX = re.compile(r"^(0|[1-9][0-9]?)$")  # decimal, no leading zero: iproute2 reads "/024" as octal


class _Parser:
    def __init__(self, findings: list[Finding]):
        self.findings = findings
        self.pending: dict[int, str] = {}  # id of a finding whose suggestion the plan goes on checking -> words
        self.host_bits: list[tuple[Finding, IPNetwork]] = []  # network(host_bits="later"): the finding, as written
        self.split: list[tuple[Finding, int, int]] = []  # a suggestion of several items for one range: its addresses

    def error(self, path: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding.error(path, message, fix))

    def suggest(self, path: str, message: str, fix: str, suggested: tuple[str, ...], otherwise: str) -> Finding:
        """An error whose ``fix`` names ``suggested``, a value the caller goes on checking as if it were
        written; ``otherwise``: the fix in words, should the plan refuse it (``settle_suggestions``)."""
        finding = Finding.error(path, message, fix, suggested)
        self.findings.append(finding)
        self.pending[id(finding)] = otherwise
        return finding

    def suggest_split(self, path: str, message: str, fix: str, suggested: tuple[str, ...], otherwise: str,
                      first: int, last: int) -> None:
        """:meth:`suggest` of several items in place of the range first..last. They start at other
        addresses than the range, so an overlap reported on another range (the one starting later)
        could land on one of them: such a split is withdrawn too (:meth:`withdraw_overlapping_splits`)."""
        self.split.append((self.suggest(path, message, fix, suggested, otherwise), first, last))

    def withdraw_overlapping_splits(self, findings: list[Finding], peers: list[tuple[int, int]]) -> list[Finding]:
        """``findings`` with each split said in words when its range overlaps another of ``peers``
        (first, last; its own range among them): the peers overlapping it are those starting at or
        before its end less those ending before its start, two binary searches."""
        firsts, lasts = sorted(a for a, _ in peers), sorted(b for _, b in peers)
        withdrawn = {}
        for finding, first, last in self.split:
            if bisect.bisect_right(firsts, last) - bisect.bisect_left(lasts, first) > 1:
                withdrawn[id(finding)] = replace(finding, fix=self.pending[id(finding)], suggested=())
        return [withdrawn.get(id(f), f) for f in findings]

    def _ipv6(self, path: str, text: str) -> bool:
        if ":" in text:
            self.error(path, f"{text} is IPv6, which the HAProxy appliance does not support.",
                       "use an IPv4 value.")
            return True
        return False

    def address(self, path: str, text: str) -> Optional[IPAddress]:
        if not text:
            self.error(path, "is empty.", "write an IPv4 address, e.g. 10.64.2.1.")
            return None
        if self._ipv6(path, text):
            return None
        if not IPV4_TEXT.match(text):
            self.error(path, f"{text!r} is not an IPv4 address.", "write four numbers, e.g. 10.64.2.1.")
            return None
        try:
            return IPAddress(text)
        except (netaddr.AddrFormatError, ValueError):
            self.error(path, f"{text!r} is not an IPv4 address (each number 0-255, without leading zeros).",
                       "write four numbers 0-255, e.g. 10.64.2.1.")
            return None

    def network(self, path: str, text: str, consequence: str = "", host_bits: str = "suggest") -> Optional[IPNetwork]:
        """A network written as network-address/prefix; host bits are an error (rule 1), whose fix
        names the network the address lies in (``host_bits="suggest"``), or is left to the caller
        (``"later"``: recorded in ``self.host_bits``), or is the caller's own finding (``"ignore"``).

        Returns the network with host bits cleared, so later rules can still run."""
        if self._ipv6(path, text):
            return None
        address, _, prefix = text.partition("/")
        if not prefix:
            self.error(path, f"{text} has no prefix length.", "write the network with its prefix, e.g. 10.64.2.0/23.")
            return None
        if self.address(path, address) is None:
            return None
        if not _PREFIX.match(prefix) or int(prefix) > 32:
            self.error(path, f"/{prefix} is not a prefix length.", "write a prefix from /0 to /32, e.g. /23.")
            return None
        net = IPNetwork(text)
        if net.ip != net.network and host_bits != "ignore":
            message = f"{text} is not a network address: it has host bits set{consequence}."
            if host_bits == "later":
                finding = Finding.error(path, message)
                self.findings.append(finding)
                self.host_bits.append((finding, net))
            else:
                self.suggest(path, message, f"write {net.cidr} (the network that {net.ip} lies in).", (str(net.cidr),),
                             f"write it as a network address: {text} with its host bits cleared, once this field's "
                             f"other errors are fixed.")
        return net.cidr

    def first_last(self, path: str, text: str, turned_ok: bool = False) -> Optional[IPRange]:
        """A range written first-last (or one address). One that ends before it starts is an error
        (unless ``turned_ok``: the caller says so itself), and the plan goes on with it turned round."""
        first_text, dash, last_text = (part.strip() for part in text.partition("-"))
        first = self.address(path, first_text)
        last = self.address(path, last_text) if dash else first
        if first is None or last is None:
            return None
        if first > last:
            if not turned_ok:
                self.suggest(path, f"range {text} ends before it starts.", f"write {last}-{first}.",
                             (f"{last}-{first}",), "write the range from its lower address to its higher, once this "
                                                   "field's other errors are fixed.")
            first, last = last, first
        return IPRange(first, last)


# --- the plan and its rules ------------------------------------------------------------------------

def lay_out(site: Site, supervisor: Optional[Callable[[Site, "NetworkLayout"], Any]] = None) -> NetworkLayout:
    """Parse the site's networks and check every rule; with ``supervisor`` (what makes the Supervisor's
    settings from the site and these networks: :func:`tkgs_lib.site.layout.network_layout` passes it) and a
    ``workload_management`` block, the Supervisor's settings too.

    The layout's findings start with the site file's own (unknown keys, secrets, types) and end with
    the ``workload_management`` block's, so ``layout.findings`` is everything wrong with the site before
    anything is touched."""
    findings: list[Finding] = list(site.findings)
    parse = _Parser(findings)
    hp = site.haproxy
    deployment = hp.deployment if hp else "frontend"

    nets = site.networks
    active: dict[str, object] = {}
    if nets is not None:
        active = {"management": nets.management, "workload": nets.workload}
        if deployment == "frontend":
            if nets.frontend is None:
                findings.append(Finding.error(
                    "networks.frontend", "is required under the frontend deployment.",
                    "add the frontend network (vlan, portgroup, cidr, gateway), or set haproxy.deployment: default."))
            active["frontend"] = nets.frontend
        elif nets.frontend is not None:
            findings.append(Finding.warning(
                "networks.frontend", "is ignored under the default deployment (2 NICs; virtual IPs on the workload network).",
                "remove it, or set haproxy.deployment: frontend to use it."))
    if hp is not None and deployment == "default" and hp.frontend_ip:
        findings.append(Finding.warning("haproxy.frontend_ip", "is ignored under the default deployment.",
                                        "remove it, or set haproxy.deployment: frontend."))

    plan = NetworkLayout(deployment, {}, findings=findings)
    for role, spec in active.items():
        if spec is None:
            continue
        plan.networks[role] = _plan_network(parse, role, spec, getattr(hp, f"{role}_ip", None) if hp else None,
                                            deployment)
    _check_distinct_networks(plan)
    if nets is not None and nets.workload is not None:
        _check_workload_ranges(plan, parse, nets.workload.ranges)
    if hp is not None:
        _check_load_balancer_ranges(plan, parse, hp.load_balancer_ranges)
        _check_appliance(plan, parse, site)
    if site.workload_management is not None and supervisor is not None:  # its rules read these networks and ranges
        plan.supervisor = supervisor(site, plan)
        findings.extend(plan.supervisor.findings)
    _suggest_blocks_for_host_bits(plan, parse.host_bits)
    plan.findings = settle_suggestions(parse.withdraw_overlapping_splits(plan.findings, [
        (r.first, r.last) for r in (*plan.load_balancer_ranges, *plan.workload_ranges)]), parse.pending)
    return plan


def _plan_network(parse: _Parser, role: str, spec, appliance_text: Optional[str], deployment: str) -> PlannedNetwork:
    path = f"networks.{role}"
    # An empty cidr or gateway was already reported by the site loader ("required").
    net = parse.network(f"{path}.cidr", spec.cidr) if spec.cidr else None
    if net is not None and net.prefixlen > 30:
        parse.error(f"{path}.cidr", f"{net} leaves no room for a gateway, the appliance and its ranges.",
                    "use a network of /30 or larger (the article uses /23 and /21).")
        net = None
    gateway = parse.address(f"{path}.gateway", spec.gateway) if spec.gateway else None
    if net is not None and gateway is not None:
        _check_host_address(parse, f"{path}.gateway", gateway, net, "gateway", role)

    if spec.vlan is not None and not 0 <= spec.vlan <= 4094:
        parse.error(f"{path}.vlan", f"VLAN {spec.vlan} is out of range.", "use a VLAN id from 0 (untagged) to 4094.")

    appliance = None
    ip_path = f"haproxy.{role}_ip"
    if not appliance_text:
        if role == "frontend" and deployment == "frontend":  # the others are required by the site loader
            parse.error(ip_path, "is required but missing.",
                        f"add the appliance's {role} address with the network's prefix"
                        f"{f', /{net.prefixlen}: an address of {net} outside every range' if net is not None else ''}.")
    elif not parse._ipv6(ip_path, appliance_text):
        address_text, slash, prefix = appliance_text.partition("/")
        address = parse.address(ip_path, address_text)
        with_prefix = f"write the address with the {role} network's prefix, once this field's other errors are fixed."
        if address is not None and slash and not _PREFIX.match(prefix):
            if net is None:
                parse.error(ip_path, f"{appliance_text} has no valid prefix after '/'.",
                            "write the address with its network's prefix, e.g. /23.")
                address = None
            else:  # judged as the address with the network's prefix, which the fix names
                parse.suggest(ip_path, f"{appliance_text} has no valid prefix after '/'.",
                              f"write {address}/{net.prefixlen}.", (f"{address}/{net.prefixlen}",), with_prefix)
                prefix = ""
        if address is not None and net is not None:
            if prefix and prefix != str(net.prefixlen):
                parse.suggest(ip_path, f"{appliance_text} has prefix /{prefix}, but the {role} network {net} is "
                                       f"/{net.prefixlen}.", f"write {address}/{net.prefixlen}.",
                              (f"{address}/{net.prefixlen}",), with_prefix)
            if _check_host_address(parse, ip_path, address, net, "appliance address", role):
                if gateway is not None and address == gateway:
                    parse.error(ip_path, f"{address} is the {role} gateway.",
                                "give the appliance its own address, outside every range.")
            appliance = IPNetwork(f"{address}/{net.prefixlen}")
    return PlannedNetwork(role, spec.vlan, spec.portgroup, net, gateway, appliance)


def _check_host_address(parse: _Parser, path: str, address: IPAddress, net: IPNetwork, what: str, role: str) -> bool:
    """An address must lie inside its network and be neither its network nor broadcast address."""
    if not _holds(net, int(address)):
        parse.error(path, f"{what} {address} is outside the {role} network {net}.",
                    f"use an address from {IPAddress(net.first + 1)} to {IPAddress(net.last - 1)}.")
        return False
    if int(address) in (net.first, net.last):
        which = "network" if int(address) == net.first else "broadcast"
        parse.error(path, f"{what} {address} is the {which} address of {net}.",
                    f"use an address from {IPAddress(net.first + 1)} to {IPAddress(net.last - 1)}.")
        return False
    return True


def _check_distinct_networks(plan: NetworkLayout) -> None:
    """Rules 4 and 7: no overlap, no shared VLAN or port group, except workload == frontend."""
    items = list(plan.networks.values())
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            same = a.network is not None and a.network == b.network
            allowed_same = same and {a.role, b.role} == {"workload", "frontend"}
            if a.network is not None and b.network is not None and _overlaps(a.network, b.network) and not allowed_same:
                plan.findings.append(Finding.error(
                    f"{b.path}.cidr", f"{b.network} overlaps the {a.role} network {a.network}.",
                    "give each network its own subnet; only workload and frontend may be the very same network."))
            if allowed_same:
                # One subnet is one broadcast domain with one gateway, whatever the port groups.
                if a.vlan != b.vlan:
                    # a's VLAN, unless the plan refuses it for b too (out of range, or a third network's)
                    fits = a.vlan is not None and 0 <= a.vlan <= 4094 and not any(
                        n.vlan == a.vlan for n in items if n is not a and n is not b)
                    plan.findings.append(Finding.error(
                        f"{b.path}.vlan", f"the {b.role} network is the same subnet as the {a.role} network but on "
                                         f"VLAN {b.vlan}, not {a.vlan}.",
                        f"use VLAN {a.vlan} for both." if fits else "use one VLAN for both, the subnet's own.",
                        (str(a.vlan),) if fits else ()))
                if a.gateway is not None and b.gateway is not None and a.gateway != b.gateway:
                    fits = int(a.gateway) not in (a.network.first, a.network.last) and (
                        b.appliance is None or b.appliance.ip != a.gateway)
                    plan.findings.append(Finding.error(
                        f"{b.path}.gateway", f"the {b.role} network is the same subnet as the {a.role} network but "
                                            f"names gateway {b.gateway}, not {a.gateway}.",
                        f"use {a.gateway} for both." if fits else "use one gateway for both, the subnet's own.",
                        (str(a.gateway),) if fits else ()))
                continue
            if a.vlan is not None and a.vlan == b.vlan:
                plan.findings.append(Finding.error(
                    f"{b.path}.vlan", f"VLAN {b.vlan} is also the {a.role} network's VLAN.",
                    "give each network its own VLAN."))
            if a.portgroup and a.portgroup == b.portgroup:
                plan.findings.append(Finding.error(
                    f"{b.path}.portgroup", f"port group {b.portgroup!r} is also the {a.role} network's.",
                    "give each network its own port group."))


def _reserved(plan: NetworkLayout) -> list[tuple[str, str, int]]:
    """(description, field, address) of every gateway and appliance address: no range may hold one.
    An address is listed once (a shared network's one gateway is the workload network's)."""
    out, seen = [], set()
    for net in plan.networks.values():
        for what, field, address in (
                (f"the {net.role} gateway", f"{net.path}.gateway", net.gateway),
                (f"the appliance's {net.role} address", net.appliance_path,
                 net.appliance.ip if net.appliance is not None else None)):
            if address is not None and int(address) not in seen:
                seen.add(int(address))
                out.append((f"{what} {address}", field, int(address)))
    return out


def _check_range_placement(plan: NetworkLayout, path: str, block: Block, role: str, virtual_ips: bool) -> None:
    """A range lies inside its network and holds no gateway or appliance address. Holding the
    network's own network or broadcast address is an error for a workload range, but only a
    warning for a block of virtual IPs (the appliance accepts it)."""
    kind = "load-balancer range" if virtual_ips else "workload range"
    planned = plan.networks.get(role)
    net = planned.network if planned else None
    if net is not None and not _within(block.first, block.last, net):
        why = " (anyip-routes.service would fail or answer for another network)" if virtual_ips else ""
        plan.findings.append(Finding.error(
            path, f"{kind} {_span(block)} is not inside the {role} network {net}{why}.",
            f"use a block inside {net}." if virtual_ips else
            f"keep it within {IPAddress(net.first + 1)}-{IPAddress(net.last - 1)}."))
    for what, _field, address in _reserved(plan):
        if _holds(block, address):
            why = " (AnyIP would answer for it)" if virtual_ips else ""
            plan.findings.append(Finding.error(
                path, f"{kind} {_span(block)} holds {what}{why}.", "shrink or move the range so it leaves that address out."))
    if net is None:
        return
    for address, which in ((net.first, "network"), (net.last, "broadcast")):
        if not _holds(block, address):
            continue
        if not virtual_ips:
            plan.findings.append(Finding.error(
                path, f"{kind} {_span(block)} holds {IPAddress(address)}, the {which} address of {net}.",
                "start the range after the network address and end it before the broadcast address."))
        else:
            plan.findings.append(Finding.warning(
                path, f"{kind} {_span(block)} holds {IPAddress(address)}, the {which} address of {net}. The "
                      f"appliance accepts it, but no virtual server can use that address.",
                f"leave {IPAddress(address)} out of the virtual-server ranges you give Workload Management later."))


def _others(count: int) -> str:
    return f" and {count} other range{'s' if count > 1 else ''}" if count else ""


def _check_overlaps_within(plan: NetworkLayout, ranges: list[PlannedRange], kind: str) -> None:
    """Each range that overlaps others of its kind, reported once, on the one that starts later (at the
    same address, the later in the file), naming one and counting the rest. A sweep in address
    order: O(n log n), whatever the ranges (an all-pairs check would be quadratic)."""
    order = sorted(range(len(ranges)), key=lambda i: (ranges[i].first, i))
    started: list[tuple[int, int]] = []  # heap of (last, index) of the ranges the sweep has passed
    widest: Optional[int] = None  # of those, the one reaching furthest: it overlaps any range that overlaps one
    for i in order:
        here = ranges[i]
        while started and started[0][0] < here.first:
            heapq.heappop(started)
        if started:
            other = ranges[widest]
            plan.findings.append(Finding.error(
                here.path, f"{kind} {_span(here.block)} overlaps {_span(other.block)} ({other.path})"
                           f"{_others(len(started) - 1)}.", "make the ranges disjoint."))
        heapq.heappush(started, (here.last, i))
        if widest is None or here.last > ranges[widest].last:
            widest = i


def _check_overlaps_across(plan: NetworkLayout, blocks: list[PlannedRange], others: list[PlannedRange],
                           kind: str) -> None:
    """Each of ``blocks`` that overlaps any of ``others``, once, with a count: the overlapping ones are
    those starting at or before its end, less those ending before its start (two binary searches)."""
    if not others:
        return
    by_first = sorted(others, key=lambda r: r.first)
    firsts = [r.first for r in by_first]
    lasts = sorted(r.last for r in others)
    reaching, best = [], None  # reaching[k]: the range reaching furthest among by_first[:k + 1]
    for r in by_first:
        best = r if best is None or r.last > best.last else best
        reaching.append(best)
    for block in blocks:
        count = bisect.bisect_right(firsts, block.last) - bisect.bisect_left(lasts, block.first)
        if count > 0:
            other = reaching[bisect.bisect_right(firsts, block.last) - 1]
            plan.findings.append(Finding.error(
                block.path, f"{kind} {_span(block.block)} overlaps {_span(other.block)} ({other.path})"
                            f"{_others(count - 1)}.", "make the ranges disjoint."))


def _too_many(plan: NetworkLayout, path: str, count: int, what: str) -> bool:
    if count <= MAX_RANGES:
        return False
    plan.findings.append(Finding.error(
        path, f"holds {count:,} {what}: more than the {MAX_RANGES:,} any appliance can use (each is a route or a "
              f"range Workload Management hands out), so they are not checked one by one.",
        "merge them into larger blocks: adjacent ranges make one."))
    return True


def _check_workload_ranges(plan: NetworkLayout, parse: _Parser, ranges: list[str]) -> None:
    """Rule 5: first-last ranges inside the workload network, clear of reserved addresses and each other."""
    if not ranges:
        plan.findings.append(Finding.warning(
            "networks.workload.ranges", "no workload range: Workload Management needs addresses for node VMs.",
            "add a range like 10.64.8.50-10.64.15.150 that avoids the gateway and the appliance."))
    if _too_many(plan, "networks.workload.ranges", len(ranges), "workload ranges"):
        return
    for i, text in enumerate(ranges):
        path = f"networks.workload.ranges[{i}]"
        block = _parse_range(parse, path, text)
        if block is None:
            continue
        _check_range_placement(plan, path, block, "workload", virtual_ips=False)
        plan.workload_ranges.append(PlannedRange(path, text, block))
    _check_overlaps_within(plan, plan.workload_ranges, "workload range")


def _parse_range(parse: _Parser, path: str, text: str) -> Optional[IPRange]:
    """A workload range: first-last, or one address."""
    if parse._ipv6(path, text):
        return None
    if "/" in text:
        return _written_as_block(parse, path, text, "workload ranges", "inside the workload network, clear of its "
                                                                      "gateway and the appliance")
    return parse.first_last(path, text)


def _written_as_block(parse: _Parser, path: str, text: str, what: str, where: str) -> Optional[IPRange]:
    """A range written as a CIDR block where first-last belongs: one finding (host bits or not), whose
    fix names the block's usable addresses; the plan goes on with them."""
    net = parse.network(path, text, host_bits="ignore")
    if net is None:
        return None
    first, last = (net.first + 1, net.last - 1) if net.prefixlen <= 30 else (net.first, net.last)
    usable = f"{IPAddress(first)}-{IPAddress(last)}"
    parse.suggest(path, f"{what} are written first-last, not as a CIDR block ({text}).",
                  f"write {usable} (its usable addresses).", (usable,), f"write the range first-last, {where}.")
    return IPRange(first, last)


def _check_load_balancer_ranges(plan: NetworkLayout, parse: _Parser, ranges: list[str]) -> None:
    """Rule 6: CIDR blocks without host bits, inside the virtual-IP network, clear of everything else."""
    role = plan.vip_role
    plan.load_balancer_lines.extend(ranges)
    if _too_many(plan, "haproxy.load_balancer_ranges", len(ranges), "load-balancer ranges"):
        return
    for i, text in enumerate(ranges):
        path = f"haproxy.load_balancer_ranges[{i}]"
        block = _parse_load_balancer_block(parse, path, text)
        if block is None:
            continue
        _check_range_placement(plan, path, block, role, virtual_ips=True)
        plan.load_balancer_ranges.append(PlannedRange(path, text, block))
    _check_overlaps_across(plan, plan.load_balancer_ranges, plan.workload_ranges, "load-balancer range")
    _check_overlaps_within(plan, plan.load_balancer_ranges, "load-balancer range")


def _parse_load_balancer_block(parse: _Parser, path: str, text: str) -> Optional[Block]:
    if parse._ipv6(path, text):
        return None
    in_words = ("write CIDR blocks (address/prefix) inside the virtual-IP network, clear of its gateway, the "
                "appliance's address and the other ranges.")
    if "-" in text:
        block = parse.first_last(path, text, turned_ok=True)
        if block is None:
            return None
        turned = ", which also ends before it starts" if str(IPAddress(block.first)) != text.partition("-")[0].strip() \
            else ""
        blocks = tuple(str(b) for b in range_to_cidrs(IPAddress(block.first), IPAddress(block.last)))
        if len(blocks) == 1:
            parse.suggest(path, f"the appliance takes CIDR blocks, not first-last ranges ({text}{turned}).",
                          f"write {blocks[0]}.", blocks, in_words)
        else:
            parse.suggest_split(path, f"{text} is not one CIDR block{turned}; exactly, it is the {len(blocks)} blocks "
                                      f"{', '.join(blocks)}.",
                                f"write those blocks as separate ranges: {', '.join(blocks)}.", blocks, in_words,
                                block.first, block.last)
        return block
    if "/" not in text:
        address = parse.address(path, text)
        if address is None:
            return None
        parse.suggest(path, f"{text} has no prefix length.", f"write {address}/32 for one address, or a block.",
                      (f"{address}/32",), in_words)
        return IPNetwork(f"{address}/32")
    # The line goes verbatim into anyip-routes.cfg: the parser accepts only the plain decimal form
    # that iproute2 reads the same way (no "/024", which it would take as octal). A block with host
    # bits gets its fix once every range is known (_suggest_blocks_for_host_bits).
    return parse.network(path, text, host_bits="later", consequence=(
        ": anyip-routes.service fails on it with 'RTNETLINK answers: Invalid argument' and adds no range after it"))


def _suggest_blocks_for_host_bits(plan: NetworkLayout, written: list[tuple[Finding, IPNetwork]]) -> None:
    """The fix of each load-balancer range written with host bits: the block the person most likely
    meant that the rest of the plan accepts. The network the address lies in when the plan accepts
    it; else (the article's 10.64.0.1/23 is the whole frontend network, its gateway and the appliance
    in it) the largest block of that network inside the virtual-IP network that holds no gateway,
    appliance address, workload range, other load-balancer range or Supervisor address, and still
    serves the virtual IPs Workload Management was given there (the one holding the address written,
    then the lowest, among equals); else what to write in words."""
    if not written:
        return
    erring: dict[str, int] = {}
    for f in plan.findings:
        if f.is_error:
            erring[f.path] = erring.get(f.path, 0) + 1
    vip = plan.networks.get(plan.vip_role)
    where = f"the {plan.vip_role} network" + (f" {vip.network}" if vip and vip.network is not None else "")
    free = _FreeBlocks(plan) if vip is not None and vip.network is not None else None
    fixed = {}
    for finding, net in written:
        cidr = net.cidr
        if erring.get(finding.path, 0) == 1:  # its host bits alone: the plan checked the network and accepts it
            fix, block = f"write {cidr} (the network that {net.ip} lies in).", cidr
        else:
            block = free.block(cidr, int(net.ip)) if free is not None else None
            fix = (f"write {block}: {cidr}, the network that {net.ip} lies in, is refused (see this field's other "
                   f"findings); {block} is the largest block of it clear of the gateways, the appliance's addresses "
                   f"and the other ranges." if block is not None else
                   f"write a block inside {where}, clear of its gateway, the appliance's address and the other "
                   f"ranges: no block of {cidr} is.")
        fixed[id(finding)] = replace(finding, fix=fix, suggested=(str(block),) if block is not None else ())
    plan.findings = [fixed.get(id(f), f) for f in plan.findings]


class Intervals:
    """(first, last) intervals as sorted, disjoint ones (overlapping and adjacent ones joined), asked
    what overlaps first..last, and what they leave free there, in two binary searches and a walk over
    only what they meet: however many there are."""

    def __init__(self, intervals: Iterable[tuple[int, int]]):
        merged: list[tuple[int, int]] = []
        for first, last in sorted(intervals):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        self.intervals = merged
        self._firsts, self._lasts = [a for a, _ in merged], [b for _, b in merged]

    def __bool__(self) -> bool:
        return bool(self.intervals)

    def overlapping(self, first: int, last: int) -> list[tuple[int, int]]:
        return self.intervals[bisect.bisect_left(self._lasts, first):bisect.bisect_right(self._firsts, last)]

    def gaps(self, first: int, last: int) -> list[tuple[int, int]]:
        """first..last less these intervals, as the pieces that remain, in order."""
        pieces, at = [], first
        for a, b in self.overlapping(first, last):
            if a > at:
                pieces.append((at, a - 1))
            at = b + 1
        if at <= last:
            pieces.append((at, last))
        return pieces


class _FreeBlocks:
    """What a load-balancer block may not overlap, and what it must serve, read once for the whole
    plan, so that each question costs binary searches and the intervals it meets: a site of a
    thousand ranges that all lie in one network is asked a thousand times."""

    def __init__(self, plan: NetworkLayout):
        self.net = plan.networks[plan.vip_role].network
        taken = [(a, a) for _, _, a in _reserved(plan)] + [(r.first, r.last) for r in plan.workload_ranges]
        vips = []
        wm = plan.supervisor
        if wm is not None:  # its own ranges (null ones are the site's, above)
            taken += [(int(r.start), int(r.last)) for r in wm.workload_ranges
                      if r.source.startswith("workload_management.")]
            if wm.management is not None:
                taken.append((int(wm.management.start), int(wm.management.last)))
            vips = [(int(r.start), int(r.last)) for r in wm.virtual_ip_ranges
                    if r.source.startswith("workload_management.")]
        self.taken = Intervals(taken)
        # Inside a range's own block, another load-balancer range covers exactly what two or more cover.
        self.shared = Intervals(_covered_twice([(r.first, r.last) for r in plan.load_balancer_ranges]))
        self.vips = Intervals(vips)

    def block(self, cidr: IPNetwork, written: int) -> Optional[IPNetwork]:
        """The largest CIDR block inside ``cidr`` and the virtual-IP network that overlaps nothing the
        plan gives out but the range of ``cidr`` itself, and holds the addresses of Workload
        Management's virtual IP ranges that only that range serves (None when no block does)."""
        lo, hi = max(cidr.first, self.net.first), min(cidr.last, self.net.last)
        if lo > hi:
            return None
        needed = [piece for a, b in self.vips.overlapping(cidr.first, cidr.last)
                  for piece in self.shared.gaps(max(a, cidr.first), min(b, cidr.last))]
        if needed:  # the smallest block holding them, then larger ones while they stay clear
            block, best = smallest_enclosing_cidr(IPAddress(needed[0][0]), IPAddress(needed[-1][1])), None
            while lo <= block.first and block.last <= hi and not self.taken.overlapping(block.first, block.last) \
                    and not self.shared.overlapping(block.first, block.last):
                best = block
                if block.prefixlen == 0:
                    break
                block = IPNetwork(f"{block.network}/{block.prefixlen - 1}").cidr
            return best
        best, best_key = None, None
        free = Intervals(self.taken.overlapping(lo, hi) + self.shared.overlapping(lo, hi)).gaps(lo, hi)
        for a, b in free:
            for block in range_to_cidrs(IPAddress(a), IPAddress(b)):
                if {block.first, block.last} <= {self.net.first, self.net.last}:  # only the network's own network
                    continue  # or broadcast address: the plan warns that no virtual server can use it
                key = (block.size, block.first <= written <= block.last, -block.first)
                if best_key is None or key > best_key:
                    best, best_key = block, key
        return best


def _covered_twice(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The addresses two or more of ``intervals`` hold (a sweep over their ends)."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b + 1, -1) for _, b in intervals])
    out, depth, since = [], 0, 0
    for at, step in events:
        if depth >= 2 and at > since:
            out.append((since, at - 1))
        depth += step
        since = at
    return out


def _check_appliance(plan: NetworkLayout, parse: _Parser, site: Site) -> None:
    """Rule 7 (distinct addresses on a shared network) and the name servers of rule 8 (host name and
    ports are checked with the other non-address rules, in rules.py)."""
    hp = site.haproxy
    w, f = plan.networks.get("workload"), plan.networks.get("frontend")
    if plan.shared_workload_frontend and w.appliance is not None and f.appliance is not None \
            and w.appliance.ip == f.appliance.ip:
        parse.error("haproxy.frontend_ip", f"{f.appliance.ip} is also the appliance's workload address; on a shared "
                                           "network the two interfaces still need different addresses.",
                    "give the frontend interface its own address.")

    for i, text in enumerate(hp.nameservers):
        parse.address(f"haproxy.nameservers[{i}]", text)
    for i, text in enumerate(hp.additional_workload_networks):
        parse.network(f"haproxy.additional_workload_networks[{i}]", text)
    plan.additional_workload_networks = list(hp.additional_workload_networks)
