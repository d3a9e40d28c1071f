"""Workload Management's settings from the site, resolved, and their checks at the desk.

:func:`supervisor_settings` turns the site's ``workload_management`` block and the address
plan into a :class:`SupervisorSettings`: exactly the values an enable request takes from the site, each
resolved (defaults filled in from the rest of the site) and each with the site field it came from,
plus findings for everything vCenter or the Supervisor would refuse or get wrong. Everything else an
enable needs (the port groups' and the storage policy's ids, the library's id, the Data Plane API's
CA chain and password) comes from the run, not from here. Pure: nothing is asked of vCenter.

Where the rules come from:

- the issue that added the block: the Supervisor's 5 consecutive management addresses inside the
  management network, clear of its network, broadcast and gateway addresses, the appliance and every
  other range; virtual-IP ranges as start + count, clear of gateways, network and broadcast addresses
  and the workload ranges; a services CIDR that overlaps no site network; DNS and NTP present;
- haproxy-appliance.md, "Known field problems": a virtual-IP range holding a gateway makes AnyIP
  answer for the gateway; Workload Management's ranges must equal, or be a subset of, the appliance's
  ``anyip-routes.cfg`` ranges (``haproxy.load_balancer_ranges``), or HAProxy fails with "cannot bind
  socket";
- haproxy-appliance.md, "Enabling Workload Management": the API takes address ranges as start and
  count, never CIDRs. A block's count is its size (a /24 is 256 addresses), never its prefix length:
  an Ansible role once sent ``10.64.1.0/24`` as address 10.64.1.0, count 24;
- VMware's API reference (``namespace_management``): network names and load-balancer ids are DNS
  labels (RFC 1123, a-z, 0-9 and inner '-', at most 63); ``master_DNS`` and ``worker_DNS`` take IP
  addresses; ``master_NTP_servers`` takes names or addresses, and without them VMware Tools keeps the
  time (the ESXi host's clock, which drifts: every certificate check then fails, so they are required);
- VMware's "System Requirements for Setting Up vSphere with Tanzu with vSphere Networking and HAProxy"
  (vSphere 7.0, GUID-C86B9028): "The Kubernetes control plane VMs on the Supervisor Cluster use three IP
  addresses from the IP address range that is assigned to the Primary Workload Network. Each node of a
  Tanzu Kubernetes cluster has a separate IP address".

As in :mod:`tkgs_lib.site.network`, everything is interval arithmetic on netaddr's values: a /8
costs what a /24 costs, and no address range is ever enumerated.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange, iprange_to_cidrs, spanning_cidr

from ..findings import Finding, settle_suggestions
from .rules import VSPHERE_NAME_MAX
from .model import Site, WorkloadManagement
from .network import MAX_RANGES, Intervals, NetworkLayout, PlannedRange, _Parser, _written_as_block
from .patterns import IPV4_TEXT, host_name_problem

__all__ = ["SUPERVISOR_ADDRESSES", "AddressCount", "SupervisorAddresses", "SupervisorSettings",
           "supervisor_settings"]

SUPERVISOR_ADDRESSES = 5  # a floating address and the three control plane VMs', plus one for upgrades
BLOCK = "workload_management"
MAX_TIMEOUT = 86400  # a day: past it the number is a typo, not a wait
USUAL_TIMEOUT, USUAL_GRACE = 7200, 1500  # seconds: what a fix offers for timeout and error_grace (the defaults)
SHOWN = 3  # collisions or blocks a finding names before it counts the rest
CONTROL_PLANE_VMS = 3  # the Supervisor's control-plane VMs, an address each on the primary workload network
# Room for one Tanzu Kubernetes cluster besides: VMware's example clusters have 3 control-plane and 3 worker
# nodes, and a rolling update adds one node before it removes one (Cluster API's maxSurge of 1).
CLUSTER_NODES = 3 + 3 + 1
DEFAULT_SERVICES = IPNetwork("10.96.0.0/23")  # vCenter's own suggestion
SERVICES_SUGGESTIONS = ("10.96.0.0", "172.20.0.0", "172.16.0.0", "192.168.0.0")  # private, for a fix to name
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_KEYS = [f.name for f in dataclasses.fields(WorkloadManagement)]  # the block's keys, in file order


# --- the value object ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AddressCount:
    """Consecutive addresses as the API takes them: the first and how many. Never a CIDR, and never
    a prefix length as the count."""

    start: IPAddress
    count: int
    source: str  # the site field they came from, e.g. haproxy.load_balancer_ranges[0]
    text: str  # as written there, e.g. 10.64.1.0/24

    @property
    def last(self) -> IPAddress:
        return IPAddress(int(self.start) + self.count - 1)

    def __str__(self) -> str:
        return f"{self.start} + {self.count:,} ({self.start}-{self.last})"


@dataclass(frozen=True)
class SupervisorAddresses:
    """The Supervisor's control plane on the management network: consecutive addresses from
    ``start`` (the request's ``master_management_network.address_range``)."""

    start: IPAddress
    count: int
    subnet_mask: IPAddress
    gateway: IPAddress

    @property
    def last(self) -> IPAddress:
        return IPAddress(int(self.start) + self.count - 1)


@dataclass(frozen=True)
class SupervisorSettings:
    """What an enable request takes from the site, resolved. A value the site got wrong is None
    (or empty) and a finding says why; use the plan for a request only without error findings.

    ``sources`` names, for each value, where it came from: its own ``workload_management`` field,
    or the default's source (``vcenter.cluster``...); each range carries its own field too."""

    cluster: str
    size: str  # tiny | small | medium | large: the API's size_hint, in lower case
    services_cidr: Optional[IPNetwork]  # the request's service_cidr: .network and .prefixlen
    management: Optional[SupervisorAddresses]
    workload_network_name: str
    workload_ranges: tuple[AddressCount, ...]
    workload_gateway: Optional[IPAddress]
    workload_subnet_mask: Optional[IPAddress]
    virtual_ip_ranges: tuple[AddressCount, ...]
    dns_servers: tuple[str, ...]
    workload_dns_servers: tuple[str, ...]  # the request's worker_DNS
    dns_search_domains: tuple[str, ...]
    ntp_servers: tuple[str, ...]
    load_balancer_id: str
    timeout: int  # seconds to wait for RUNNING
    error_grace: int = 0  # seconds an ERROR may last while vCenter retries
    sources: dict[str, str] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()

    def rows(self) -> list[dict]:
        """One row per value (what, the value, where it came from), for a table of "field <- from"."""
        def text(value) -> str:
            if value is None:
                return "missing"
            if isinstance(value, tuple):
                return ", ".join(value) if value else "none"
            return str(value)

        m = self.management
        rows = [("cluster", self.cluster), ("size", self.size), ("services_cidr", self.services_cidr),
                ("management.start", m and m.start), ("management.count", m and m.count),
                ("management.subnet_mask", m and m.subnet_mask), ("management.gateway", m and m.gateway),
                ("workload_network_name", self.workload_network_name)]
        out = [{"what": what, "value": text(value), "from": self.sources.get(what, "")} for what, value in rows]
        for what, ranges in (("workload_ranges", self.workload_ranges), ("virtual_ip_ranges", self.virtual_ip_ranges)):
            out += [{"what": f"{what}[{i}]", "value": str(r), "from": f"{r.source} ({r.text}){_less(what, r)}"}
                    for i, r in enumerate(ranges)]
            if not ranges:
                out.append({"what": what, "value": "none", "from": self.sources.get(what, "")})
        rows = [("workload_gateway", self.workload_gateway), ("workload_subnet_mask", self.workload_subnet_mask),
                ("dns_servers", self.dns_servers), ("workload_dns_servers", self.workload_dns_servers),
                ("dns_search_domains", self.dns_search_domains),
                ("ntp_servers", self.ntp_servers), ("load_balancer_id", self.load_balancer_id),
                ("timeout", self.timeout), ("error_grace", self.error_grace)]
        out += [{"what": what, "value": text(value), "from": self.sources.get(what, "")} for what, value in rows]
        return out


def _less(what: str, r: AddressCount) -> str:
    defaulted = what == "virtual_ip_ranges" and not r.source.startswith(f"{BLOCK}.")
    return ", less each network's network and broadcast addresses" if defaulted else ""


# --- what the site already takes: addresses and ranges, each with its field ---------------------

@dataclass(frozen=True)
class _Taken:
    first: int
    last: int
    what: str  # as a finding names it: "the management gateway 10.64.2.1"
    path: str  # the field that takes it


class _Index:
    """Taken intervals, asked "what overlaps first..last?" in O(log n) (two binary searches, as
    the address plan's overlap check), however many there are."""

    def __init__(self, taken: Iterable[_Taken]):
        self._by_first = sorted(taken, key=lambda t: (t.first, t.last))
        self._firsts = [t.first for t in self._by_first]
        self._lasts = sorted(t.last for t in self._by_first)
        self._reaching: list[_Taken] = []  # of _by_first[:k + 1], the one reaching furthest
        for t in self._by_first:
            self._reaching.append(t if not self._reaching or t.last > self._reaching[-1].last else self._reaching[-1])

    def overlap(self, first: int, last: int) -> tuple[Optional[_Taken], int]:
        """One interval overlapping first..last and how many do."""
        end = bisect.bisect_right(self._firsts, last)
        count = end - bisect.bisect_left(self._lasts, first)
        return (self._reaching[end - 1], count) if count > 0 else (None, 0)


def _address(what: str, path: str, address: int) -> _Taken:
    return _Taken(address, address, f"{what} {IPAddress(address)}", path)


def _network_and_broadcast(network: NetworkLayout) -> list[_Taken]:
    """Each network's network and broadcast address: no host, virtual or not, can use them."""
    out = []
    for net in network.networks.values():
        if net.network is not None:
            for address, which in ((net.network.first, "network"), (net.network.last, "broadcast")):
                out.append(_Taken(address, address, f"{IPAddress(address)}, the {which} address of the {net.role} "
                                                     f"network {net.network}", f"{net.path}.cidr"))
    return out


def _gateways_and_appliance(network: NetworkLayout) -> list[_Taken]:
    """Each gateway and appliance address (a gateway in a virtual-IP range makes AnyIP answer for it)."""
    out = []
    for net in network.networks.values():
        if net.gateway is not None:
            out.append(_address(f"the {net.role} gateway", f"{net.path}.gateway", int(net.gateway)))
        if net.appliance is not None:
            out.append(_address(f"the appliance's {net.role} address", net.appliance_path, int(net.appliance.ip)))
    return out


def _span(first: int, last: int) -> str:
    return str(IPAddress(first)) if first == last else f"{IPAddress(first)}-{IPAddress(last)}"


def _as_written(r: AddressCount) -> str:
    """A range as the site wrote it, with first-last beside a block: 10.64.1.0/24 (10.64.1.0-10.64.1.255)."""
    span = _span(int(r.start), int(r.last))
    return span if r.text.replace(" ", "") == span else f"{r.text} ({span})"


def _without(first: int, last: int, addresses: Iterable[int]) -> list[tuple[int, int]]:
    """first..last less the given addresses, as the pieces that remain."""
    return Intervals((a, a) for a in addresses).gaps(first, last)


def _listed(items: list[str], limit: int = SHOWN) -> str:
    """a, b and c; past ``limit``: a, b, c and 4 more."""
    if len(items) > limit:
        return f"{', '.join(items[:limit])} and {len(items) - limit:,} more"
    return " and ".join(filter(None, [", ".join(items[:-1]), items[-1] if items else ""]))


def _dns_label_problem(name: str) -> str:
    if len(name) > 63:
        return f"is {len(name):,} characters long; a DNS label (RFC 1123) has at most 63."
    if not _DNS_LABEL.match(name):
        return (f"{name!r} is not a DNS label (RFC 1123): lower-case letters a-z, digits and '-', not first or "
                f"last, at most 63 characters.")
    return ""


def _as_dns_label(name: str, fallback: str) -> str:
    """The nearest DNS label to ``name``, to suggest: Network_1 -> network-1."""
    label = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", name.lower()))[:63].strip("-")
    return label or fallback


# --- the plan ---------------------------------------------------------------------------------------

def supervisor_settings(site: Site, network: NetworkLayout) -> SupervisorSettings:
    """The Supervisor's settings from ``site``'s ``workload_management`` block, resolved against the
    address plan ``network`` (``network_layout(site)``, whose own findings are not repeated here), and
    the findings of every rule above, each at the ``workload_management`` field at fault."""
    return _Planner(site, network).plan()


class _Planner:
    def __init__(self, site: Site, network: NetworkLayout):
        self.site, self.network = site, network
        self.findings: list[Finding] = []
        self.parse = _Parser(self.findings)
        self.sources: dict[str, str] = {}
        # No range may hold one of these; most rules read them, so they are made once.
        self.network_and_broadcast = _network_and_broadcast(network)
        self.special = self.network_and_broadcast + _gateways_and_appliance(network)

    def error(self, key: str, message: str, fix: str, suggested: tuple[str, ...] = ()) -> None:
        """An error at the block's ``key``; ``suggested``: the value its fix names, which the plan accepts."""
        self.findings.append(Finding.error(f"{BLOCK}.{key}", message, fix, suggested))

    def plan(self) -> SupervisorSettings:
        wm = self.site.workload_management
        if wm is None:
            self.findings.append(Finding.error(
                BLOCK, "is missing: Workload Management is enabled with the values of this block.",
                "add a workload_management block (`tkgs-runbook fields` lists its keys)."))
            return self._result(cluster="", size="", services=None, management=None, name="", workload=(),
                                virtual_ips=(), dns=(), workload_dns=(), search=(), ntp=(), lb_id="", timeout=0)
        for key in ("size", "dns_search_domains", "load_balancer_id", "timeout", "error_grace"):
            self.sources[key] = f"{BLOCK}.{key}"
        cluster = self._cluster(wm.cluster)
        services = self._services_cidr(wm.services_cidr)
        workload = self._workload_ranges(wm.workload_ranges)
        self._check_room(workload, wm.workload_ranges is not None)
        virtual_ips = self._virtual_ip_ranges(wm.virtual_ip_ranges, wm.workload_ranges is not None, workload)
        dns = self._dns(wm.dns_servers)
        workload_dns = self._workload_dns(wm.workload_dns_servers, dns)
        search = self._search_domains(wm.dns_search_domains)
        ntp = self._ntp(wm.ntp_servers)
        management = self._supervisor_addresses(wm.supervisor_start, workload, virtual_ips)
        name = self._label("workload_network_name", wm.workload_network_name)
        lb_id = self._label("load_balancer_id", wm.load_balancer_id)
        timeout = self._timeout(wm.timeout)
        error_grace = self._error_grace(wm.error_grace, timeout)
        # The rules run in the order they need one another (the Supervisor's addresses last, as they
        # must avoid every range); a person reads the findings in the order of the block's keys.
        self.findings.sort(key=_key_order)
        peers = [(int(r.start), int(r.last)) for r in (*workload, *virtual_ips)]
        self.findings[:] = settle_suggestions(self.parse.withdraw_overlapping_splits(self.findings, peers),
                                              self.parse.pending, also=self.site.findings)
        return self._result(cluster=cluster, size=wm.size, services=services, management=management, name=name,
                            workload=workload, virtual_ips=virtual_ips, dns=dns, workload_dns=workload_dns,
                            search=search, ntp=ntp, lb_id=lb_id, timeout=timeout, error_grace=error_grace)

    def _result(self, *, cluster, size, services, management, name, workload, virtual_ips, dns, workload_dns, search,
                ntp, lb_id, timeout, error_grace=0) -> SupervisorSettings:
        w = self.network.networks.get("workload")
        self.sources["workload_gateway"] = "networks.workload.gateway"
        self.sources["workload_subnet_mask"] = "networks.workload.cidr"
        return SupervisorSettings(
            cluster=cluster, size=size, services_cidr=services, management=management, workload_network_name=name,
            workload_ranges=tuple(workload), workload_gateway=w.gateway if w else None,
            workload_subnet_mask=w.network.netmask if w and w.network is not None else None,
            virtual_ip_ranges=tuple(virtual_ips), dns_servers=tuple(dns), workload_dns_servers=tuple(workload_dns),
            dns_search_domains=tuple(search),
            ntp_servers=tuple(ntp), load_balancer_id=lb_id, timeout=timeout, error_grace=error_grace,
            sources=dict(self.sources),
            findings=tuple(self.findings))

    # --- names ------------------------------------------------------------------------------------

    def _cluster(self, written: Optional[str]) -> str:
        vc = self.site.vcenter
        if written is None:
            self.sources["cluster"] = "vcenter.cluster"
            return vc.cluster if vc is not None else ""  # vcenter.cluster's own problems are its own findings
        self.sources["cluster"] = f"{BLOCK}.cluster"
        if not written:
            self.error("cluster", "is empty.", "write the cluster's name, or null for vcenter.cluster.")
        elif len(written) > VSPHERE_NAME_MAX:
            self.error("cluster", f"is {len(written):,} characters long; vSphere names an object with at most "
                                  f"{VSPHERE_NAME_MAX}.", "write the cluster's name as vCenter shows it.")
        return written

    def _label(self, key: str, name: str) -> str:
        """Network names and load-balancer ids are DNS labels (the API reference; a later API takes a
        DNS subdomain for the network, which every label is)."""
        self.sources[key] = f"{BLOCK}.{key}"
        problem = _dns_label_problem(name)
        if problem:
            label = _as_dns_label(name, WorkloadManagement.__dataclass_fields__[key].default)
            self.error(key, problem, f"write a DNS label, e.g. {label}.", (label,))
        return name

    def _timeout(self, seconds: Optional[int]) -> int:
        if seconds is None:  # a bad type, already reported by the loader
            return 0
        if not 1 <= seconds <= MAX_TIMEOUT:
            grace = self.site.workload_management.error_grace
            # the two hours VMware's own tooling waits, or the error_grace it must not be shorter than
            usual = max(USUAL_TIMEOUT, grace if isinstance(grace, int) and 0 <= grace <= MAX_TIMEOUT else 0)
            self.error("timeout", f"{seconds:,} seconds is out of range: from 1 to a day ({MAX_TIMEOUT}).",
                       f"give the Supervisor the two hours VMware's own tooling waits, or more, e.g. {usual}.",
                       (str(usual),))
        return seconds

    def _error_grace(self, seconds: Optional[int], timeout: int) -> int:
        if seconds is None:
            return 0
        if not 0 <= seconds <= max(timeout, 0):
            usual = min(USUAL_GRACE, max(timeout, 0))
            self.error("error_grace", f"{seconds:,} seconds is out of range: from 0 to the timeout ({timeout:,}).",
                       f"let an ERROR pass for many minutes while vCenter retries, e.g. {usual} (0: none may pass).",
                       (str(usual),))
        return seconds

    # --- DNS and NTP --------------------------------------------------------------------------------

    def _dns(self, servers: list[str], key: str = "dns_servers") -> list[str]:
        """The API's master_DNS and worker_DNS take IPv4 addresses. An empty dns_servers is the
        loader's "required" finding already."""
        self.sources[key] = f"{BLOCK}.{key}"
        out = []
        for i, text in enumerate(servers[:MAX_RANGES]):
            if self.parse.address(f"{BLOCK}.{key}[{i}]", text) is not None:
                out.append(text)
        return out

    def _workload_dns(self, servers: Optional[list[str]], dns: list[str]) -> list[str]:
        """The workloads' DNS servers (the API's worker_DNS): the management ones unless written, for a
        workload network that cannot reach those."""
        if servers is None:
            self.sources["workload_dns_servers"] = f"{BLOCK}.dns_servers"
            return dns
        if not servers:
            self.sources["workload_dns_servers"] = f"{BLOCK}.workload_dns_servers"
            self.error("workload_dns_servers", "is empty: the Supervisor's workloads would have no DNS server.",
                       "write the DNS servers the workload network reaches, or null for dns_servers.")
            return []
        return self._dns(servers, "workload_dns_servers")

    def _search_domains(self, domains: list[str]) -> list[str]:
        out = []
        for i, name in enumerate(domains[:MAX_RANGES]):
            problem = host_name_problem(name, fully_qualified=False) if name else "is empty."
            if problem:
                self.error(f"dns_search_domains[{i}]", problem, "write a domain name, e.g. test.corp.")
            else:
                out.append(name)
        return out

    def _ntp(self, servers: list[str]) -> list[str]:
        """Names or addresses (the API's master_NTP_servers). None at all is the loader's "required"
        finding: VMware Tools would keep the control plane's time from its host, and a clock that drifts
        fails every certificate check."""
        self.sources["ntp_servers"] = f"{BLOCK}.ntp_servers"
        out = []
        for i, text in enumerate(servers[:MAX_RANGES]):
            path = f"{BLOCK}.ntp_servers[{i}]"
            if IPV4_TEXT.match(text) or ":" in text:
                if self.parse.address(path, text) is not None:
                    out.append(text)
                continue
            problem = host_name_problem(text, fully_qualified=False) if text else "is empty."
            if problem:
                self.error(f"ntp_servers[{i}]", problem, "write an NTP server's IPv4 address or host name.")
            else:
                out.append(text)
        return out

    # --- the services CIDR ------------------------------------------------------------------------

    def _site_networks(self) -> list[tuple[str, str, IPNetwork]]:
        out = [(f"the {n.role} network {n.network}", f"{n.path}.cidr", n.network)
               for n in self.network.networks.values() if n.network is not None]
        for i, text in enumerate(self.network.additional_workload_networks[:MAX_RANGES]):
            try:  # their own problems are the address plan's findings
                net = IPNetwork(text).cidr
            except (AddrFormatError, ValueError, TypeError):
                continue
            if net.version == 4:
                out.append((f"the additional workload network {net}", f"haproxy.additional_workload_networks[{i}]",
                            net))
        return out

    def _services_cidr(self, text: str) -> Optional[IPNetwork]:
        """Kubernetes routes its services' range inside the cluster: a site network inside it would be
        unreachable from the Supervisor (the issue; the API: "should not overlap ... other services")."""
        key = "services_cidr"
        self.sources[key] = f"{BLOCK}.{key}"
        path = f"{BLOCK}.{key}"
        networks = self._site_networks()
        if not text:
            free = _free_services(DEFAULT_SERVICES, networks)
            self.error(key, "is empty.", f"write the Kubernetes services' network{_as_example(free)}.",
                       (str(free),) if free else ())
            return None
        services = self.parse.network(path, text)
        if services is None:
            return None
        clashes = [(what, where) for what, where, net in networks
                   if services.first <= net.last and net.first <= services.last]
        if clashes:
            free = _free_services(services, networks)
            self.error(key, f"the services CIDR {services} overlaps "
                            f"{_listed([f'{what} ({where})' for what, where in clashes])}: the Supervisor would "
                            f"route those addresses to Kubernetes services.",
                       f"use a network that overlaps no site network{_as_example(free)}.", (str(free),) if free else ())
        return services

    # --- workload ranges --------------------------------------------------------------------------

    def _workload_ranges(self, written: Optional[list[str]]) -> list[AddressCount]:
        if written is None:
            self.sources["workload_ranges"] = "networks.workload.ranges"
            ranges = [AddressCount(IPAddress(r.first), r.block.size, r.path, r.text)
                      for r in self.network.workload_ranges]
            spec = getattr(self.site.networks, "workload", None)  # missing: the loader's finding
            if not ranges and spec is not None and not spec.ranges:
                self.error("workload_ranges", "no workload range: the Supervisor needs addresses on the workload "
                                              "network, and networks.workload.ranges has none.",
                           "add a range to networks.workload.ranges (or here), e.g. 10.64.8.50-10.64.15.150, clear "
                           "of the gateway and the appliance.")
            return ranges  # their rules are the address plan's, at networks.workload.ranges
        self.sources["workload_ranges"] = f"{BLOCK}.workload_ranges"
        if not written:
            self.error("workload_ranges", "is empty: the Supervisor needs addresses on the workload network.",
                       "write ranges (first-last), or null for networks.workload.ranges.")
            return []
        if self._too_many("workload_ranges", len(written)):
            return []
        w = self.network.networks.get("workload")
        special = self.special
        ranges: list[AddressCount] = []
        for i, text in enumerate(written):
            key = f"workload_ranges[{i}]"
            block = self._first_last(key, text, cidr_allowed=False)
            if block is None:
                continue
            r = AddressCount(IPAddress(block.first), block.size, f"{BLOCK}.{key}", text)
            net = w.network if w is not None else None
            if net is not None and not net.first <= block.first <= block.last <= net.last:
                self.error(key, f"workload range {_as_written(r)} is not inside the workload network {net}.",
                           f"keep it within {IPAddress(net.first + 1)}-{IPAddress(net.last - 1)}.")
            self._check_clear_of(key, "workload range", r, special)
            ranges.append(r)
        self._check_disjoint(ranges, "workload range")
        return ranges

    def _check_room(self, ranges: list[AddressCount], written: bool) -> None:
        """The primary workload network's ranges hold the control-plane VMs' 3 addresses (an error
        below), and room for one Tanzu Kubernetes cluster besides (a warning below). Special addresses
        in a range do not count: their own findings take them out."""
        if not ranges:
            return  # its own finding says so
        specials = [t.first for t in self.special]
        held = Intervals((int(r.start), int(r.last)) for r in ranges)  # overlapping ranges count once
        usable = sum(b - a + 1 for first, last in held.intervals for a, b in _without(first, last, specials))
        path = f"{BLOCK}.workload_ranges" if written else "networks.workload.ranges"
        roomy = CONTROL_PLANE_VMS + CLUSTER_NODES
        has = f"{usable:,} usable address{'es' if usable != 1 else ''} in {'its range' if len(ranges) == 1 else 'all'}"
        fix = (f"widen the range, or add one, to hold at least {roomy} addresses: {CONTROL_PLANE_VMS} for the "
               f"control-plane VMs and one for each node of the Tanzu Kubernetes clusters ({CLUSTER_NODES} for one of "
               f"3 control-plane and 3 worker nodes, and the node a rolling update adds).")
        if usable < CONTROL_PLANE_VMS:
            self.findings.append(Finding.error(path, f"the Supervisor's primary workload network has {has}: its "
                                                     f"{CONTROL_PLANE_VMS} control-plane VMs take an address each.",
                                               fix))
        elif usable < roomy:
            left = usable - CONTROL_PLANE_VMS
            self.findings.append(Finding.warning(
                path, f"the Supervisor's primary workload network has {has}: its {CONTROL_PLANE_VMS} control-plane "
                      f"VMs take an address each, leaving {left} for the nodes of Tanzu Kubernetes clusters, fewer "
                      f"than one cluster of 3 control-plane and 3 worker nodes takes while a rolling update adds one "
                      f"({CLUSTER_NODES}).", fix))

    # --- virtual IP ranges ------------------------------------------------------------------------

    def _virtual_ip_ranges(self, written: Optional[list[str]], workload_written: bool,
                           workload: list[AddressCount]) -> list[AddressCount]:
        anyip = self.network.load_balancer_ranges
        if written is None:
            self.sources["virtual_ip_ranges"] = ("haproxy.load_balancer_ranges, less each network's network and "
                                                 "broadcast addresses")
            ranges = self._default_virtual_ips(anyip)
            if workload_written:  # the address plan checked them against networks.workload.ranges only
                self._check_apart(workload, ranges, "workload range", "virtual IP range")
            return ranges
        self.sources["virtual_ip_ranges"] = f"{BLOCK}.virtual_ip_ranges"
        if not written:
            self.error("virtual_ip_ranges", "is empty: the load balancer needs at least one range of virtual IPs.",
                       "write ranges within haproxy.load_balancer_ranges, or null for those ranges.")
            return []
        if self._too_many("virtual_ip_ranges", len(written)):
            return []
        special = self.special
        served = Intervals((r.first, r.last) for r in anyip)
        ranges: list[AddressCount] = []
        for i, text in enumerate(written):
            key = f"virtual_ip_ranges[{i}]"
            block = self._virtual_ip_block(key, text)
            if block is None:
                continue
            # A block's count is its size, never its prefix length (the Ansible role's bug).
            r = AddressCount(IPAddress(block.first), block.last - block.first + 1, f"{BLOCK}.{key}", text)
            if served:
                self._check_served(key, r, served)
            self._check_clear_of(key, "virtual IP range", r, special)
            ranges.append(r)
        self._check_disjoint(ranges, "virtual IP range")
        self._check_apart(ranges, workload, "virtual IP range", "workload range")
        return ranges

    def _default_virtual_ips(self, anyip: list[PlannedRange]) -> list[AddressCount]:
        """The appliance's anyip blocks less the network and broadcast addresses they hold (the
        article's 10.64.1.0/24 in 10.64.0.0/23 holds 10.64.1.255): no virtual server can use those.
        Each block's other problems are the address plan's findings at its own field."""
        specials = [t.first for t in self.network_and_broadcast]
        ranges = [AddressCount(IPAddress(a), b - a + 1, r.path, r.text)
                  for r in anyip for a, b in _without(r.first, r.last, specials)]
        if anyip and not ranges:
            self.error("virtual_ip_ranges", "is null, and haproxy.load_balancer_ranges hold no address once each "
                                            "network's network and broadcast addresses are left out.",
                       "write ranges of usable virtual IPs within haproxy.load_balancer_ranges.")
        return ranges

    def _virtual_ip_block(self, key: str, text: str) -> Optional[IPRange | IPNetwork]:
        """first-last, one address, or a CIDR block: a block counts all its addresses (a /24 is 256)."""
        path = f"{BLOCK}.{key}"
        if not text:
            self.error(key, "is empty.", "write first-last (10.64.1.0-10.64.1.254) or a CIDR block (10.64.1.0/25).")
            return None
        if "/" in text and "-" not in text:
            return self.parse.network(path, text)  # host bits: an error with the network to write, then its size
        first_text, dash, last_text = (part.strip() for part in text.partition("-"))
        if dash and re.fullmatch(r"[0-9]{1,2}", last_text) and IPV4_TEXT.match(first_text):
            # A prefix length or a count where the last address belongs: the very confusion that
            # sent a /24's prefix length as its count. Say what each reading would be.
            n = int(last_text)
            start = self.parse.address(path, first_text)
            if start is None:
                return None
            readings = []  # (as written, what it holds, its addresses)
            if n <= 32:
                block = IPNetwork(f"{start}/{n}").cidr
                readings.append((str(block), f"the /{n} block of {block.size:,} addresses", IPRange(block.first,
                                                                                                 block.last)))
            if 1 <= n <= 2 ** 32 - int(start):
                last = IPAddress(int(start) + n - 1)
                readings.append((f"{start}-{last}", f"{n} address{'es' if n > 1 else ''} from {start}",
                                 IPRange(start, last)))
            message = f"{text!r} ends in {n}, not an address: a range is first-last or a CIDR block."
            accepted = [reading for reading in readings if self._accepted_virtual_ips(key, reading[2])]
            if not accepted:
                neither = f": neither {' nor '.join(what for _, what, _ in readings)} is" if len(readings) > 1 else ""
                self.error(key, message, f"write first-last or a CIDR block inside haproxy.load_balancer_ranges, clear "
                                         f"of the gateways and the appliance's addresses{neither}.")
                return None
            value, what, addresses = accepted[0]
            other = next((w for _, w, _ in readings if w != what), "")
            self.parse.suggest(path, message, f"write {value} for {what}" + (
                f" (if you meant {other}, write {'them first-last' if '/' in value else 'the block'} instead)"
                if other else "") + ".", (value,), "write first-last or a CIDR block, once this field's other errors "
                                                   "are fixed.")
            return addresses
        return self._first_last(key, text)

    def _accepted_virtual_ips(self, key: str, addresses: IPRange) -> bool:
        """Whether the rules of a virtual IP range by itself (inside the load-balancer ranges, clear of
        every special address) accept ``addresses`` at ``key``: they run, and what they found is dropped."""
        mark, pending, split = len(self.findings), dict(self.parse.pending), list(self.parse.split)
        r = AddressCount(IPAddress(addresses.first), addresses.size, f"{BLOCK}.{key}", "")
        served = Intervals((r.first, r.last) for r in self.network.load_balancer_ranges)
        if served:
            self._check_served(key, r, served)
        self._check_clear_of(key, "virtual IP range", r, self.special)
        refused = len(self.findings) > mark
        del self.findings[mark:]
        self.parse.pending, self.parse.split = pending, split
        return not refused

    def _check_served(self, key: str, r: AddressCount, served: Intervals) -> None:
        """Workload Management's virtual IPs must equal, or lie inside, the appliance's anyip-routes.cfg
        ranges (haproxy-appliance.md, "Known field problems"): HAProxy cannot bind any other address,
        and vCenter never extends that file."""
        gaps = served.gaps(int(r.start), int(r.last))
        if not gaps:
            return
        missing = sum(b - a + 1 for a, b in gaps)
        first_out = IPAddress(gaps[0][0])
        outside = f"{first_out} is outside" if missing == 1 else f"{first_out} and {missing - 1:,} more are outside"
        within = f"keep the range within {_listed(self.network.load_balancer_lines)}"
        vip = self.network.networks.get(self.network.vip_role)
        if vip is None or vip.network is None or not all(vip.network.first <= a and b <= vip.network.last
                                                         for a, b in gaps):
            # Outside the virtual-IP network the appliance cannot take them either: no block to add.
            fix = f"{within} (the {self.network.vip_role} network's virtual IPs)."
        else:
            # Only blocks the address plan takes: none may hold a gateway, an appliance, network or
            # broadcast address (held by this range, its own finding says so) or a workload address.
            refused = Intervals([(t.first, t.last) for t in self.special] +
                                [(w.first, w.last) for w in self.network.workload_ranges])
            pieces = [piece for a, b in gaps for piece in refused.gaps(a, b)]
            blocks = [str(c) for a, b in pieces[:SHOWN + 1] for c in iprange_to_cidrs(IPAddress(a), IPAddress(b))]
            if not blocks:
                add = ""
            elif len(blocks) <= SHOWN:
                add = f"add {_listed(blocks)} to haproxy.load_balancer_ranges"
            else:
                enclosing = spanning_cidr([IPAddress(pieces[0][0]), IPAddress(pieces[-1][1])])
                one = "" if refused.overlapping(enclosing.first, enclosing.last) else f" (or the one block {enclosing})"
                add = f"add the blocks {_listed(blocks)}{one} to haproxy.load_balancer_ranges"
            fix = (f"{add} and repair the appliance's anyip-routes.cfg (vCenter never extends it), or {within}." if add
                   else f"{within} (the {self.network.vip_role} network's virtual IPs).")
        self.error(key, f"virtual IP range {_as_written(r)} is not inside the appliance's anyip ranges "
                        f"(haproxy.load_balancer_ranges: {_listed(self.network.load_balancer_lines)}): {outside}, "
                        f"and HAProxy cannot bind an address its anyip-routes.cfg lacks.", fix)

    def _check_clear_of(self, key: str, kind: str, r: AddressCount, special: list[_Taken]) -> None:
        """No gateway (AnyIP would answer for it: "Known field problems"), appliance, network or
        broadcast address inside a range Workload Management hands out (the issue)."""
        first, last = int(r.start), int(r.last)
        held = [t for t in special if first <= t.first <= last]
        if not held:
            return
        anyip_gateway = kind == "virtual IP range" and any(t.path.endswith(".gateway") for t in held)
        pieces = [_span(a, b) for a, b in _without(first, last, [t.first for t in held])]
        message = (f"{kind} {_as_written(r)} holds {_listed([f'{t.what} ({t.path})' for t in held])}"
                   f"{' (AnyIP would answer for the gateway)' if anyip_gateway else ''}.")
        if not pieces or len(pieces) > SHOWN:
            self.error(key, message, "use other addresses." if not pieces else
                       f"leave {'them' if len(held) > 1 else 'it'} out: write the range's addresses less those.")
        else:  # a part of the range: what else the plan finds at this field, it finds there too
            fix = (f"leave {'them' if len(held) > 1 else 'it'} out: write {_listed(pieces)}"
                   f"{' as separate ranges' if len(pieces) > 1 else ''}.")
            otherwise = f"leave {'them' if len(held) > 1 else 'it'} out, once this field's other errors are fixed."
            self.parse.suggest_split(r.source, message, fix, tuple(pieces), otherwise, first, last)  # other starts

    # --- the Supervisor's management addresses ------------------------------------------------------

    def _supervisor_addresses(self, text: str, workload: list[AddressCount],
                              virtual_ips: list[AddressCount]) -> Optional[SupervisorAddresses]:
        """5 consecutive addresses inside the management network, clear of its network, broadcast and
        gateway addresses, the appliance, every range and every server the site names (the issue)."""
        key = "supervisor_start"
        path = f"{BLOCK}.{key}"
        self.sources.update({"management.start": path, "management.count": "the Supervisor takes 5 addresses",
                             "management.subnet_mask": "networks.management.cidr",
                             "management.gateway": "networks.management.gateway"})
        if not text:
            return None  # the loader's "required" finding
        if "/" in text:
            address = self.parse.address(path, text.partition("/")[0])
            if address is None:
                return None
            self.parse.suggest(path, f"{text} has a prefix; the Supervisor's mask is the management network's.",
                               f"write the address alone: {address}.", (str(address),),
                               "write the address alone, without a prefix, once this field's other errors are fixed.")
            text = str(address)  # judged as the address it holds
        start = self.parse.address(path, text)
        m = self.network.networks.get("management")
        if start is None or m is None or m.network is None:
            return None
        net, first, last = m.network, int(start), int(start) + SUPERVISOR_ADDRESSES - 1
        taken = self._taken_around_supervisor(workload, virtual_ips)
        span = f"the Supervisor's {SUPERVISOR_ADDRESSES} addresses {_span(first, min(last, 2 ** 32 - 1))}"
        inside = net.first <= first <= net.last
        free = _nearest_free_start(net, first if inside else net.first, taken)
        fix = (f"write supervisor_start: {IPAddress(free)} ({_span(free, free + SUPERVISOR_ADDRESSES - 1)} is "
               f"free)." if free is not None else
               f"free {SUPERVISOR_ADDRESSES} consecutive addresses in {net}: none is free now.")
        suggested = (str(IPAddress(free)),) if free is not None else ()
        if not inside:
            self.error(key, f"{start} is outside the management network {net}.", fix, suggested)
        elif last >= net.last:
            self.error(key, f"{span} run past the end of the management network {net}: its last usable "
                            f"address is {IPAddress(net.last - 1)}.", fix, suggested)
        else:
            held, seen = [], set()
            for t in taken:  # the gateway that is also the DNS server is named once, as the gateway
                if t.first <= last and first <= t.last and (t.first, t.last) not in seen:
                    held.append(t)
                    seen.add((t.first, t.last))
            if held:
                self.error(key, f"{span} hold {_listed([f'{t.what} ({t.path})' for t in held])}.", fix, suggested)
        if m.gateway is None:
            return None
        return SupervisorAddresses(start, SUPERVISOR_ADDRESSES, net.netmask, m.gateway)

    def _taken_around_supervisor(self, workload: list[AddressCount],
                                 virtual_ips: list[AddressCount]) -> list[_Taken]:
        """Every address the site already gives something: its special addresses, every range, and
        every server it names (a Supervisor on the DNS server's address breaks both)."""
        taken = list(self.special)
        for r in self.network.workload_ranges:
            taken.append(_Taken(r.first, r.last, f"the workload range {r.text}", r.path))
        for r in self.network.load_balancer_ranges:
            taken.append(_Taken(r.first, r.last, f"the load-balancer range {r.text}", r.path))
        for kind, ranges in (("workload range", workload), ("virtual IP range", virtual_ips)):
            taken += [_Taken(int(r.start), int(r.last), f"the {kind} {_as_written(r)}", r.source)
                      for r in ranges if r.source.startswith(BLOCK)]  # the defaults are the ranges above
        wm, hp = self.site.workload_management, self.site.haproxy
        named = [("the DNS server", f"{BLOCK}.dns_servers", wm.dns_servers),
                 ("the workload DNS server", f"{BLOCK}.workload_dns_servers", wm.workload_dns_servers or []),
                 ("the NTP server", f"{BLOCK}.ntp_servers", wm.ntp_servers),
                 ("the appliance's DNS server", "haproxy.nameservers", hp.nameservers if hp else [])]
        for what, where, servers in named:
            for i, text in enumerate(servers[:MAX_RANGES]):
                if isinstance(text, str) and IPV4_TEXT.match(text):
                    try:
                        taken.append(_address(what, f"{where}[{i}]", int(IPAddress(text))))
                    except (AddrFormatError, ValueError):  # not an address: its own field's finding says so
                        pass
        return taken

    # --- shared shapes ----------------------------------------------------------------------------------

    def _first_last(self, key: str, text: str, cidr_allowed: bool = True) -> Optional[IPRange]:
        path = f"{BLOCK}.{key}"
        if not text:
            self.error(key, "is empty.", "write a range first-last, e.g. 10.64.8.50-10.64.15.150.")
            return None
        if not cidr_allowed and "/" in text:
            return _written_as_block(self.parse, path, text, "workload ranges", "inside the workload network, clear "
                                                                                "of its gateway and the appliance")
        if self.parse._ipv6(path, text):
            return None
        return self.parse.first_last(path, text)

    def _too_many(self, key: str, count: int) -> bool:
        if count <= MAX_RANGES:
            return False
        self.error(key, f"holds {count:,} ranges: more than the {MAX_RANGES:,} Workload Management can use, so "
                        f"they are not checked one by one.", "merge them into larger ranges: adjacent ranges make one.")
        return True

    def _check_disjoint(self, ranges: list[AddressCount], kind: str) -> None:
        """Each range overlapping one that starts earlier (at the same address, earlier in the file),
        once, at the later one's field: a sweep in address order, O(n log n)."""
        order = sorted(range(len(ranges)), key=lambda i: (int(ranges[i].start), i))
        reaching: Optional[AddressCount] = None  # of the ranges passed, the one reaching furthest
        for r in (ranges[i] for i in order):
            if reaching is not None and int(r.start) <= int(reaching.last):
                self.findings.append(Finding.error(
                    r.source, f"{kind} {_as_written(r)} overlaps {_as_written(reaching)} ({reaching.source}).",
                    "make the ranges disjoint."))
            if reaching is None or int(r.last) > int(reaching.last):
                reaching = r

    def _check_apart(self, ranges: list[AddressCount], others: list[AddressCount], kind: str, other_kind: str) -> None:
        """Virtual IPs and node addresses never share an address: each of ``ranges`` overlapping any
        of ``others`` is reported at its own field, naming one and counting the rest."""
        index = _Index(_Taken(int(o.start), int(o.last), f"the {other_kind} {_as_written(o)}", o.source)
                       for o in others)
        for r in ranges:
            hit, count = index.overlap(int(r.start), int(r.last))
            if hit is not None:
                rest = f" and {count - 1:,} other range{'s' if count > 2 else ''}" if count > 1 else ""
                self.findings.append(Finding.error(
                    r.source, f"{kind} {_as_written(r)} overlaps {hit.what} ({hit.path}){rest}.",
                    f"keep the {kind}s and the {other_kind}s apart: no address may be both."))


def _key_order(finding: Finding) -> int:
    """The position of a finding's key in the block (workload_management.virtual_ip_ranges[2] -> 10)."""
    key = re.split(r"[.\[]", finding.path.removeprefix(f"{BLOCK}."), maxsplit=1)[0]
    return _KEYS.index(key) if key in _KEYS else len(_KEYS)


def _free_services(services: IPNetwork, networks: list[tuple[str, str, IPNetwork]]) -> Optional[IPNetwork]:
    """A private block of the written size (at least a /12's prefix) clear of every network, to suggest."""
    for base in SERVICES_SUGGESTIONS:
        candidate = IPNetwork(f"{base}/{max(services.prefixlen, 12)}").cidr
        if not any(candidate.first <= n.last and n.first <= candidate.last for *_, n in networks):
            return candidate
    return None


def _as_example(services: Optional[IPNetwork]) -> str:
    """", e.g. 10.96.0.0/23 (vCenter's default)" for a suggested services network."""
    if services is None:
        return ""
    return f", e.g. {services}" + (" (vCenter's default)" if services == DEFAULT_SERVICES else "")


def _nearest_free_start(net: IPNetwork, wanted: int, taken: list[_Taken]) -> Optional[int]:
    """The start nearest ``wanted`` of 5 consecutive addresses of ``net`` that nothing takes (its
    network and broadcast addresses are among ``taken``): the free gaps between what is taken,
    sorted, each offering the start within it closest to ``wanted``."""
    inside = sorted((max(t.first, net.first), min(t.last, net.last)) for t in taken
                    if t.first <= net.last and net.first <= t.last)
    best, at = None, net.first
    for a, b in inside + [(net.last + 1, net.last + 1)]:
        if a - at >= SUPERVISOR_ADDRESSES:  # the gap at..a-1 holds 5
            start = min(max(wanted, at), a - SUPERVISOR_ADDRESSES)
            if best is None or abs(start - wanted) < abs(best - wanted):
                best = start
        at = max(at, b + 1)
    return best
