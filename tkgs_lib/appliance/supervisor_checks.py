"""The Supervisor through the load balancer, checked: reads only, one row per check.

Where the field's worst failures live: a virtual IP range Workload Management uses that the
appliance's ``anyip-routes.cfg`` lacks (HAProxy then fails with "cannot bind socket" and the
Supervisor stays CONFIGURING), a return route missing (the handshake never completes), the
Supervisor's endpoint unreachable on 6443. The facts (:class:`SupervisorFacts`) are reads:

* what vCenter says of the Supervisor (:class:`SupervisorView`, made from its ``Clusters.Info`` by
  :func:`tkgs_lib.stages.enable.supervisor_view`, as vCenter's transport reads it): its status and
  messages, its API endpoint, the virtual IP ranges and the Data Plane API it gave the load
  balancer;
* a TLS handshake with ``<api_server_cluster_endpoint>:6443`` from here, verified against a CA
  bundle (:mod:`.supervisor_endpoint`);
* the appliance's HAProxy through its Data Plane API, GET only (:mod:`.load_balancer`): the
  frontend on the virtual IP, whether HAProxy runs it, each backend server's state;
* the appliance's ``anyip-routes.cfg`` and local routes over SSH, the very facts the verify
  stage reads (:mod:`.facts`).

:func:`supervisor_checks` judges them, a pure function, into :class:`~.checks.Check` rows
(check, expected, found, status ok / failed / not checked, fix), as the verify stage's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import netaddr

from ..errors import ApplianceError
from .checks import Check
from .commands import CommandRunner, gather_many
from .facts import ANYIP_FILE, ANYIP_UNIT, ConfigText, Route, config_file, routes
from .load_balancer import NOT_CHECKED_YET, Frontend, LoadBalancerState, read_load_balancer
from .supervisor_endpoint import API_PORT, Handshake, handshake

__all__ = ["VirtualIpRange", "SupervisorView", "SupervisorFacts", "gather_supervisor_facts",
           "supervisor_checks", "SUPERVISOR_PORTS"]

SUPERVISOR_PORTS = (6443, 443)  # the Kubernetes API, and the Supervisor's 443: what its load balancer binds


@dataclass(frozen=True)
class VirtualIpRange:
    """Consecutive addresses as vCenter's API gives them: the first and how many."""

    address: str
    count: int

    @property
    def first(self) -> netaddr.IPAddress:
        return netaddr.IPAddress(self.address)

    @property
    def last(self) -> netaddr.IPAddress:
        return netaddr.IPAddress(min(int(self.first) + max(self.count, 1) - 1, 2 ** 32 - 1))

    @property
    def addresses(self) -> netaddr.IPSet:
        return netaddr.IPSet(netaddr.IPRange(self.first, self.last))

    def __str__(self) -> str:
        return f"{self.address} + {self.count} ({self.first}-{self.last})"


@dataclass(frozen=True)
class SupervisorView:
    """What vCenter reports of one cluster's Supervisor and the load balancer it was given."""

    cluster: str
    config_status: str
    messages: tuple[str, ...] = ()
    endpoint: str = ""  # api_server_cluster_endpoint: the Kubernetes API's virtual IP, once RUNNING
    load_balancer: str = ""  # its id
    virtual_ip_ranges: tuple[VirtualIpRange, ...] = ()
    dataplane_servers: tuple[tuple[str, int], ...] = ()  # the Data Plane APIs the Supervisor programs
    dataplane_username: str = ""
    workload_ranges: tuple[VirtualIpRange, ...] = ()  # the primary workload network's: the control plane's


@dataclass
class SupervisorFacts:
    """Every read the checks judge; a read that failed is None, with why in ``problems``."""

    view: SupervisorView
    handshake: Optional[Handshake] = None  # None: not tried (no endpoint yet)
    load_balancer: Optional[LoadBalancerState] = None
    anyip_file: Optional[ConfigText] = None
    local_routes: Optional[list[Route]] = None
    ca_described: str = "the CA bundle given"
    problems: dict[str, str] = field(default_factory=dict)


def _addresses(ranges: Sequence[VirtualIpRange]) -> netaddr.IPSet:
    """Every address of ``ranges`` (one vCenter holds that is not IPv4 left out)."""
    held = netaddr.IPSet()
    for ip_range in ranges:
        try:
            held |= ip_range.addresses
        except (netaddr.AddrFormatError, ValueError):
            continue
    return held


def _ranges_set(view: SupervisorView) -> netaddr.IPSet:
    return _addresses(view.virtual_ip_ranges)


def gather_supervisor_facts(view: SupervisorView, *, ca_file: Optional[str | Path], runner: CommandRunner,
                            dataplane_password: str, dataplane_ca_pem: str, dataplane_username: str = "",
                            ca_described: str = "", timeout: float = 10.0) -> SupervisorFacts:
    """Every fact, read only: the handshake with the endpoint (verified against ``ca_file``, the site's
    ``vcenter.ca_file``), the first Data Plane API vCenter lists (the appliance's CA, its user, the
    password), and the appliance's anyip file and local routes through ``runner`` (SSH)."""
    facts = SupervisorFacts(view, ca_described=ca_described or (f"the CA bundle {ca_file}" if ca_file
                                                                 else "no CA bundle"))
    if view.endpoint:
        facts.handshake = handshake(view.endpoint, ca_file, port=API_PORT, timeout=timeout)
    if view.dataplane_servers:
        host, port = view.dataplane_servers[0]
        try:
            facts.load_balancer = read_load_balancer(
                host, port, dataplane_username or view.dataplane_username, dataplane_password, dataplane_ca_pem,
                trusted_by="the appliance's CA", within=_ranges_set(view), timeout=timeout)
        except ApplianceError as exc:
            facts.problems["data plane api"] = exc.message
    else:
        facts.problems["data plane api"] = "vCenter lists no HAProxy Data Plane API for the Supervisor's load balancer"
    read = gather_many(runner, {ANYIP_FILE: config_file(ANYIP_FILE), "local routes": routes("local")}, timeout)
    for name, value in read.items():
        if isinstance(value, ApplianceError):
            facts.problems[name] = value.message
    facts.anyip_file = None if isinstance(read[ANYIP_FILE], ApplianceError) else read[ANYIP_FILE]
    facts.local_routes = None if isinstance(read["local routes"], ApplianceError) else read["local routes"]
    return facts


# --- the checks (pure) ---------------------------------------------------------------------------

def _not_checked(check: str, expected: str, why: str) -> Check:
    return Check(check, expected, why, "not checked")


def _binding_refused(view: SupervisorView) -> bool:
    return any("cannot bind socket" in m for m in view.messages)


def _status_row(view: SupervisorView) -> Check:
    check, expected = f"Supervisor of {view.cluster}", "RUNNING"
    found = view.config_status + (f": {'; '.join(view.messages)}" if view.messages else "")
    if view.config_status == "RUNNING":
        return Check(check, expected, found, "ok")
    if _binding_refused(view):
        fix = ("HAProxy cannot bind the Supervisor's virtual IP, so its load-balancer controller keeps retrying and "
               "the Supervisor stays CONFIGURING: the address is outside the appliance's anyip ranges (see the virtual "
               "IP range rows); once the appliance serves it, the Supervisor goes RUNNING by itself.")
    elif view.config_status == "CONFIGURING":
        fix = ("Workload Management is still configuring the Supervisor: wait, or read its messages (vCenter, "
               "Workload Management); the rows below show how far its load balancer got.")
    elif view.config_status == "REMOVING":
        fix = "the Supervisor is being removed (Workload Management was disabled on the cluster)."
    else:
        fix = ("read the Supervisor's messages (vCenter, Workload Management) and fix their cause; the rows below "
               "show whether the load balancer is it.")
    return Check(check, expected, found, "failed", fix)


_HANDSHAKE_FIX = {
    "connect timeout": "the connection to {vip}:{port} never completed: packets reach the virtual IP but no answer "
                       "comes back, so a return route is missing: on the appliance (the frontend network's routing "
                       "table and rule, see the verify stage's rows; the repair stage rebuilds them) or on the "
                       "frontend network's gateway; or nothing holds {vip} (see the virtual IP range rows).",
    "handshake timeout": "HAProxy accepted the connection but no control-plane server finished the handshake: see the "
                         "server rows, and the routes from the appliance's workload interface to the control plane.",
    "refused": "nothing listens on {vip}:{port}: HAProxy has no frontend bound there (see the HAProxy rows below).",
    "unreachable": "no route to {vip}: nothing answers for the address on the frontend network (see the virtual IP "
                   "range rows), or run this from the frontend network or one routed to it.",
    "closed": "HAProxy took the connection but no control-plane server did (every server down, or unreachable from "
              "the appliance's workload interface): see the server rows.",
    "untrusted": "the certificate is not signed by {ca}: the Supervisor's certificates are issued by vCenter's VMCA, "
                 "so give vcenter.ca_file the VMCA root certificate (vCenter's /certs/download.zip); or something "
                 "other than the Supervisor answers at {vip}.",
    "other name": "the certificate does not name {vip}: another service answers at that address (an address used "
                  "twice on the frontend network?), or the Supervisor's certificate lacks its virtual IP.",
    "expired": "the Supervisor's certificate has expired: check the clocks (vCenter, the control plane, here), or "
               "renew it from vCenter (Workload Management, the Supervisor's certificates).",
    "no CA": "give vcenter.ca_file the CA bundle that signs vCenter's certificates (VMCA's root): it also signs "
             "the Supervisor's.",
    "error": "the connection to {vip}:{port} failed: check the frontend network's routing to it.",
}


def _handshake_row(facts: SupervisorFacts) -> Check:
    view, answer = facts.view, facts.handshake
    check = (f"TLS to the Supervisor's API {view.endpoint}:{API_PORT}" if view.endpoint else
             f"TLS to the Supervisor's API endpoint ({API_PORT})")
    expected = (f"a handshake verified by {facts.ca_described}, the certificate naming {view.endpoint or 'it'}, from "
                f"a control-plane server")
    if answer is None:
        return _not_checked(check, expected, f"vCenter reports no api_server_cluster_endpoint yet (the Supervisor is "
                                             f"{view.config_status})")
    if answer.ok:
        found = (f"{answer.tls_version} handshake, answered by {answer.answered_by}, certificate issued by "
                 f"{answer.issuer or 'an unnamed CA'}")
        workload = _addresses(view.workload_ranges)
        own = [a for a in answer.server_addresses if netaddr.valid_ipv4(a)]
        if workload and own and not any(netaddr.IPAddress(a) in workload for a in own):
            return Check(check, expected, found, "failed",
                         f"the certificate names {', '.join(own)}, none an address of the Supervisor's primary "
                         f"workload network, where its control-plane VMs are: something other than the Supervisor's "
                         f"control plane answers at {answer.address} (another load balancer, an address used twice?).")
        return Check(check, expected, found, "ok")
    fix = _HANDSHAKE_FIX[answer.cause].format(vip=answer.address, port=answer.port, ca=facts.ca_described)
    return Check(check, expected, f"{answer.cause}: {answer.detail}", "failed", fix)


def _supervisor_frontend(view: SupervisorView, state: LoadBalancerState) -> tuple[str, list[Frontend]]:
    """The Supervisor's virtual IP (its endpoint, else the address a frontend binds on 6443 inside the
    virtual IP ranges, as while it configures) and the frontends with a bind on it."""
    vip = view.endpoint
    if not vip:
        ranges = _ranges_set(view)
        vip = next((b.address for f in state.frontends for b in f.binds
                    if b.port == API_PORT and netaddr.valid_ipv4(b.address) and netaddr.IPAddress(b.address) in ranges),
                   "")
    return vip, [f for f in state.frontends if vip and any(b.address == vip for b in f.binds)]


def _load_balancer_rows(facts: SupervisorFacts) -> list[Check]:
    view, state = facts.view, facts.load_balancer
    ports = " and ".join(str(p) for p in SUPERVISOR_PORTS)
    if state is None:
        why = facts.problems.get("data plane api", "not read")
        return [_not_checked("HAProxy frontend for the Supervisor's virtual IP", f"binds on {ports} (Data Plane API)",
                             f"could not be read: {why}")]
    vip, frontends = _supervisor_frontend(view, state)
    check = f"HAProxy frontend for {vip or 'the Supervisor'}"
    expected = " and ".join(f"{vip or '<virtual IP>'}:{p}" for p in SUPERVISOR_PORTS) + " bound (its configuration)"
    if not frontends:
        where = vip or f"an address of the virtual IP ranges on {API_PORT}"
        return [Check(check, expected, f"no frontend binds {where} ({len(state.frontends)} frontends)", "failed",
                      "the Supervisor's load-balancer controller has not programmed the appliance: read the "
                      "Supervisor's messages (its row); check the Data Plane API user, password and CA chain given "
                      "to Workload Management.")]
    frontend = frontends[0]
    binds = [b for b in frontend.binds if b.address == vip]
    found = f"frontend {frontend.name}: {', '.join(str(b) for b in binds)}"
    missing = [p for p in SUPERVISOR_PORTS if p not in {b.port for b in binds}]
    rows = [Check(check, expected, found, "failed" if missing else "ok",
                  f"frontend {frontend.name} has no bind on {vip}:{', '.join(map(str, missing))}: the Supervisor's "
                  f"load-balancer controller put it there; read the Supervisor's messages." if missing else "")]
    status = state.frontend_status(frontend.name)
    run_check = f"HAProxy runs frontend {frontend.name}"
    if status == "OPEN":
        rows.append(Check(run_check, "OPEN (HAProxy's statistics: bound, accepting)", "OPEN", "ok"))
    else:
        cause = ("the Supervisor's messages say HAProxy cannot bind the virtual IP: it is outside the appliance's "
                 "anyip ranges (see the virtual IP range rows)" if _binding_refused(view) else
                 "read /var/log/haproxy.log on the appliance (a virtual IP outside the anyip ranges fails with "
                 "'cannot bind socket')")
        rows.append(Check(run_check, "OPEN (HAProxy's statistics: bound, accepting)",
                          status or "not running: HAProxy serves a configuration without it", "failed",
                          f"the configuration holds frontend {frontend.name}, but HAProxy's last reload did not load "
                          f"it, so nothing listens on {vip}: {cause}."))
    return rows + _server_rows(frontend, state)


def _server_rows(frontend: Frontend, state: LoadBalancerState) -> list[Check]:
    backend = frontend.default_backend
    configured = state.servers.get(backend)
    if not configured:
        return [Check(f"HAProxy backend {backend or '(none)'}", "the control-plane servers", "no server", "failed",
                      f"frontend {frontend.name} sends its connections to a backend without servers: the Supervisor's "
                      f"load-balancer controller fills it with the control-plane VMs; read the Supervisor's "
                      f"messages.")]
    running = state.runtime.get(backend)
    rows = []
    for server in configured:
        check, expected = f"HAProxy server {server.name} of {backend} ({server.address})", "up, its health check passed"
        held = next((r for r in running or () if r.name == server.name), None)
        if held is None:
            rows.append(Check(check, expected, "not in HAProxy's running configuration", "failed",
                              f"HAProxy does not run backend {backend} (see the row of frontend {frontend.name})."))
            continue
        stat = state.server_stat(backend, server.name)
        health = " ".join(p for p in (stat.check_status, stat.check_desc) if p) if stat else ""
        found = held.operational_state + (f" ({health})" if health else "") + (
            f", {held.admin_state}" if held.admin_state and held.admin_state != "ready" else "")
        port = server.check_port or server.port or API_PORT
        up = held.operational_state == "up"  # also before HAProxy's first health check (see PASSED_CHECKS)
        if held.admin_state not in ("", "ready"):
            rows.append(Check(check, expected, found, "failed",
                              f"{server.name} is in {held.admin_state} on HAProxy (set by hand or by a controller): "
                              f"HAProxy sends it nothing until it is ready again."))
        elif up and stat is not None and stat.check_passed:
            rows.append(Check(check, expected, found, "ok"))
        elif up and stat is not None and not stat.checked:
            rows.append(Check(check, expected, found, "warning",
                              f"HAProxy does not check {server.name}'s health, so it sends it connections whether or "
                              f"not its API server answers: the Supervisor's load-balancer controller normally "
                              f"enables the check; read the Supervisor's messages."))
        elif up and (stat is None or stat.last_check in NOT_CHECKED_YET):
            said = f" ({stat.last_check})" if stat is not None and stat.last_check else ""
            rows.append(Check(check, expected, found, "failed",
                              f"HAProxy has not completed a health check of {server.address}:{port} yet{said}, and "
                              f"reports a server up until its first check, so nothing yet says {server.name} answers: "
                              f"run the checks again in a few seconds; if it stays so, read /var/log/haproxy.log on "
                              f"the appliance."))
        else:
            rows.append(Check(check, expected, found, "failed",
                              f"HAProxy's health check of {server.address}:{port} fails: the control-plane VM "
                              f"{server.name} or its API server is down, or unreachable from the appliance's workload "
                              f"interface; the other servers carry the traffic meanwhile. See the Supervisor's "
                              f"control-plane VMs in vCenter."))
    return rows


def _line_block(line: str) -> Optional[netaddr.IPNetwork]:
    """What one line of anyip-routes.cfg serves: a CIDR block; a line with host bits set is refused by
    the kernel (anyip-routes.service's own failure), so it serves nothing (None)."""
    try:
        return netaddr.IPNetwork(str(ipaddress.IPv4Network(line.strip())))
    except ValueError:
        return None


def _served_blocks(lines: Sequence[str]) -> netaddr.IPSet:
    """What anyip-routes.cfg's lines serve together."""
    return netaddr.IPSet(block for block in map(_line_block, lines) if block is not None)


def _lines_holding(lines: Sequence[str], addresses: netaddr.IPSet) -> str:
    """The lines of anyip-routes.cfg that serve any of ``addresses``, as the file holds them: the file
    holds 10.64.1.0/24, not the eight blocks 10.64.1.0-10.64.1.254 splits into."""
    return ", ".join(line for line in lines if (block := _line_block(line)) is not None
                     and addresses & netaddr.IPSet([block]))


def _local_blocks(local_routes: Sequence[Route]) -> netaddr.IPSet:
    held = netaddr.IPSet()
    for route in local_routes:
        if route.type == "local" and route.dev == "lo":
            try:
                held.add(netaddr.IPNetwork(route.dst))
            except (netaddr.AddrFormatError, ValueError):
                continue
    return held


def _blocks(addresses: netaddr.IPSet) -> str:
    return ", ".join(str(c) for c in addresses.iter_cidrs())


def _held_by(lines: Sequence[str], addresses: netaddr.IPSet) -> str:
    """"10.64.1.0/24, a line of /etc/vmware/anyip-routes.cfg": the file's own lines holding ``addresses``."""
    holding = _lines_holding(lines, addresses)
    return f"{holding}, {'lines' if ', ' in holding else 'a line'} of {ANYIP_FILE}"


def _range_rows(facts: SupervisorFacts, site_ranges: Sequence[str]) -> list[Check]:
    view = facts.view
    expected = f"inside {ANYIP_FILE} and the appliance's local routes"
    if not view.virtual_ip_ranges:
        return [Check("virtual IP ranges of the Supervisor's load balancer", "at least one", "none", "failed",
                      "vCenter reports no virtual IP range for the load balancer: enable Workload Management with the "
                      "site's haproxy.load_balancer_ranges.")]
    if facts.anyip_file is None or facts.local_routes is None:
        why = "; ".join(facts.problems.get(k, "") for k in (ANYIP_FILE, "local routes") if k in facts.problems)
        return [_not_checked(f"virtual IP range {r}", expected, f"could not be read: {why or 'not read'}")
                for r in view.virtual_ip_ranges]
    in_file, routed = _served_blocks(facts.anyip_file.lines), _local_blocks(facts.local_routes)
    site = _served_blocks(site_ranges)
    rows = []
    for ip_range in view.virtual_ip_ranges:
        check = f"virtual IP range {ip_range}"
        try:
            wanted = ip_range.addresses
        except (netaddr.AddrFormatError, ValueError):
            rows.append(Check(check, expected, "not an IPv4 range", "failed",
                              "vCenter holds a range that is not IPv4 addresses: the appliance serves IPv4 only."))
            continue
        not_in_file, not_routed = wanted - in_file, (wanted & in_file) - routed
        if not not_in_file and not not_routed:
            rows.append(Check(check, expected, f"inside {_held_by(facts.anyip_file.lines, wanted)}; local routes "
                                                f"present", "ok"))
            continue
        found = []
        if not_in_file:
            found.append(f"{_blocks(not_in_file)} not in {ANYIP_FILE}"
                         f" (it holds {', '.join(facts.anyip_file.lines) or 'no range'})")
        if not_routed:
            found.append(f"{_held_by(facts.anyip_file.lines, not_routed)}, without a local route")
        fixes = []
        if not_in_file:
            known, unknown = not_in_file & site, not_in_file - site
            if unknown:
                fixes.append(f"Workload Management was given {_blocks(unknown)}, which the appliance does not serve, "
                             f"so HAProxy cannot bind those virtual IPs ('cannot bind socket'): add {_blocks(unknown)} "
                             f"to haproxy.load_balancer_ranges, then run the repair stage, which extends "
                             f"{ANYIP_FILE}")
            if known:
                fixes.append(f"{_blocks(known)} is in the site's haproxy.load_balancer_ranges but not in the "
                             f"appliance's {ANYIP_FILE}, so HAProxy cannot bind those virtual IPs ('cannot bind "
                             f"socket'): run the repair stage, which rewrites {ANYIP_FILE} from "
                             f"haproxy.load_balancer_ranges")
        if not_routed:
            fixes.append(f"{ANYIP_UNIT} did not add the local route for "
                         f"{_lines_holding(facts.anyip_file.lines, not_routed)}: see the verify "
                         f"stage's {ANYIP_UNIT} row; the repair stage starts it again")
        rows.append(Check(check, expected, "; ".join(found), "failed", "; ".join(fixes) + "."))
    return rows


def supervisor_checks(facts: SupervisorFacts, site_ranges: Sequence[str] = ()) -> list[Check]:
    """Every check of the Supervisor through the load balancer: its status, the TLS handshake with its
    endpoint, the appliance's frontend, whether HAProxy runs it, each backend server, and each virtual
    IP range inside the appliance's anyip ranges. ``site_ranges``: the site's
    haproxy.load_balancer_ranges (the network plan's ``load_balancer_lines``), so a fix can say
    whether the site or only the appliance lacks a range."""
    return [_status_row(facts.view), _handshake_row(facts), *_load_balancer_rows(facts),
            *_range_rows(facts, site_ranges)]
