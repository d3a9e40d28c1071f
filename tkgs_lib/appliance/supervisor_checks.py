"""The Supervisor through the load balancer, checked: reads only, one row per check.

Where the field's worst failures live: a virtual IP range Workload Management uses that the
appliance's ``anyip-routes.cfg`` lacks (HAProxy then fails with "cannot bind socket" and the
Supervisor stays CONFIGURING), a return route missing (the handshake never completes), the
Supervisor's endpoint unreachable on 6443 or on 443 (where ``kubectl vsphere login`` starts:
``/wcp/loginbanner``, ``/wcp/login``; a virtual IP that answers 6443 but not 443 is a known field
fault), and HAProxy sending the Supervisor's traffic to servers that are not its control plane. The
facts (:class:`SupervisorFacts`) are reads:

* what vCenter says of the Supervisor (:class:`SupervisorView`, made from its ``Clusters.Info`` by
  :func:`tkgs_lib.stages.enable.supervisor_view`, as vCenter's transport reads it): its status and
  messages, its API endpoint, its management addresses, the primary workload network (whose range's
  first three addresses its control-plane VMs take), the certificate of its API through the load
  balancer when vCenter reports one, the virtual IP ranges and the Data Plane API it gave the load
  balancer;
* the appliance's HAProxy through its Data Plane API, GET only (:mod:`.load_balancer`): the
  frontend on the virtual IP, whether HAProxy runs it, the backend each port goes to (a real
  Supervisor's: one per port, by ``use_backend ... if { dst_port <port> }``), each server's state;
* TLS handshakes from here, verified against a CA bundle (:mod:`.supervisor_endpoint`): with
  ``<api_server_cluster_endpoint>`` on 6443 and on 443, another try when HAProxy closes one (a
  server going down meanwhile: one handshake meets one server), and with each server of those
  backends on its port, checked to answer for the virtual IP, so that a server that is not the
  Supervisor's is named whichever one the round robin would have picked;
* the appliance's ``anyip-routes.cfg`` and local routes over SSH, the very facts the verify
  stage reads (:mod:`.facts`).

:func:`supervisor_checks` judges them, a pure function, into :class:`~.checks.Check` rows
(check, expected, found, status ok / failed / not checked, fix), as the verify stage's.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import netaddr

from ..errors import ApplianceError
from .checks import Check, anyip_local_routes
from .commands import CommandRunner, gather_many
from .facts import ANYIP_FILE, ANYIP_UNIT, ConfigText, Route, config_file, routes
from .load_balancer import NOT_CHECKED_YET, BackendServer, Frontend, LoadBalancerState, read_load_balancer
from .supervisor_endpoint import API_PORT, Handshake, fingerprint_of, handshake

__all__ = ["VirtualIpRange", "SupervisorView", "SupervisorFacts", "gather_supervisor_facts",
           "supervisor_checks", "SUPERVISOR_PORTS"]

SUPERVISOR_PORTS = (6443, 443)  # the Kubernetes API, and the Supervisor's 443: what its load balancer binds
CONTROL_PLANE_VMS = 3


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
    management_endpoint: str = ""  # api_server_management_endpoint: the floating management address
    api_servers: tuple[str, ...] = ()  # the control-plane VMs' management addresses
    tls_endpoint_certificate: str = field(default="", repr=False)  # PEM: its API's leaf through the load balancer

    @property
    def control_plane_addresses(self) -> tuple[str, ...]:
        """The control-plane VMs' workload addresses: the first three of the primary workload network's
        ranges. VMware's documentation (vSphere with Tanzu 7.0, GUID-1F885AAE): "The Kubernetes control
        plane VMs on the Supervisor Cluster use three IP addresses from the IP address range that is
        assigned to the Primary Workload Network"; a lab's HAProxy configuration shows them as its
        first three (ritsz/ritsz.github.io, _posts/2021-7-24-Notes-on-HAProxy.md: servers
        192.168.128.0-2)."""
        taken: list[str] = []
        for ip_range in self.workload_ranges:
            try:
                first = ip_range.first
            except (netaddr.AddrFormatError, ValueError):
                continue
            taken += [str(first + i) for i in range(min(max(ip_range.count, 0), CONTROL_PLANE_VMS - len(taken)))]
            if len(taken) == CONTROL_PLANE_VMS:
                break
        return tuple(taken)

    @property
    def own_addresses(self) -> tuple[str, ...]:
        """Every address vCenter gives the Supervisor's control plane: its VMs' on both networks, the floating one."""
        return tuple(dict.fromkeys([*self.control_plane_addresses, *self.api_servers,
                                    *([self.management_endpoint] if self.management_endpoint else [])]))


@dataclass
class SupervisorFacts:
    """Every read the checks judge; a read that failed is None, with why in ``problems``."""

    view: SupervisorView
    handshakes: dict[int, tuple[Handshake, ...]] = field(default_factory=dict)  # port → the tries with the VIP
    server_handshakes: dict[tuple[str, int], Handshake] = field(default_factory=dict)  # (address, port) → one
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
    """Every fact, read only: the first Data Plane API vCenter lists (the appliance's CA, its user, the
    password), then the handshakes (verified against ``ca_file``, the site's ``vcenter.ca_file``), side by
    side: with the endpoint on each port, and with each server of the backends those ports go to; and the
    appliance's anyip file and local routes through ``runner`` (SSH)."""
    facts = SupervisorFacts(view, ca_described=ca_described or (f"the CA bundle {ca_file}" if ca_file
                                                                 else "no CA bundle"))
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
    vip, frontend = _the_frontend(view, facts.load_balancer)
    served = port_backends(frontend, facts.load_balancer) if frontend is not None else {}

    def tries(port: int) -> tuple[Handshake, ...]:
        """Up to one handshake per server of the port's backend while HAProxy closes them (a server going
        down meets one handshake; the server rows name it): the virtual IP answers when one completes."""
        made: list[Handshake] = []
        for _ in range(max(1, len(served.get(port, ("", []))[1]))):
            made.append(handshake(view.endpoint, ca_file, port=port, timeout=timeout))
            if made[-1].cause != "closed":
                break
        return tuple(made)

    with ThreadPoolExecutor(max_workers=8) as pool:
        endpoint = {port: pool.submit(tries, port) for port in SUPERVISOR_PORTS} if view.endpoint else {}
        servers = {(server.address, server_port): pool.submit(handshake, server.address, ca_file, port=server_port,
                                                              name=vip, timeout=timeout)
                   for port, (_, held) in served.items() for server in held
                   for server_port in [server.port or port] if vip and netaddr.valid_ipv4(server.address)}
        read = gather_many(runner, {ANYIP_FILE: config_file(ANYIP_FILE), "local routes": routes("local")}, timeout)
        facts.handshakes = {port: future.result() for port, future in endpoint.items()}
        facts.server_handshakes = {where: future.result() for where, future in servers.items()}
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


def _port_words(port: int) -> str:
    return "the Supervisor's API" if port == API_PORT else "the Supervisor's login"


def _not_its_own(view: SupervisorView, answer: Handshake) -> str:
    """Why a certificate that verified is still not the Supervisor's (a sentence), or "" when it is: its leaf is
    not the one vCenter reports for the Supervisor's API, or it names addresses none of which vCenter gives the
    control plane (an impostor's certificate from the same CA names its own)."""
    wanted = fingerprint_of(view.tls_endpoint_certificate) if view.tls_endpoint_certificate else ""
    if wanted and answer.fingerprint and answer.fingerprint != wanted:
        return (f"its certificate ({answer.subject or 'no common name'}, SHA-256 {answer.fingerprint[:16]}...) is not "
                f"the one vCenter reports for the Supervisor's API through the load balancer "
                f"(tls_endpoint_certificate, SHA-256 {wanted[:16]}...)")
    own = [a for a in answer.server_addresses if netaddr.valid_ipv4(a)]
    if own and view.own_addresses and not set(own) & set(view.own_addresses):
        return (f"its certificate names {', '.join(own)}, none an address vCenter gives the Supervisor's control plane "
                f"({', '.join(view.own_addresses)})")
    return ""


def _handshake_row(facts: SupervisorFacts, port: int) -> Check:
    view = facts.view
    tries = facts.handshakes.get(port, ())
    check = (f"TLS to {_port_words(port)} {view.endpoint}:{port}" if view.endpoint else
             f"TLS to {_port_words(port)} endpoint ({port})")
    expected = (f"a handshake verified by {facts.ca_described}, the certificate naming {view.endpoint or 'it'}, from "
                f"a control-plane server" + ("" if port == API_PORT else " (kubectl vsphere login starts there: "
                                                                         "/wcp/loginbanner, /wcp/login)"))
    if not tries:
        return _not_checked(check, expected, f"vCenter reports no api_server_cluster_endpoint yet (the Supervisor is "
                                             f"{view.config_status})")
    answer = tries[-1]
    if answer.ok:
        found = (f"{answer.tls_version} handshake, answered by {answer.answered_by}, certificate issued by "
                 f"{answer.issuer or 'an unnamed CA'}")
        foreign = _not_its_own(view, answer)
        if foreign:
            return Check(check, expected, found, "failed",
                         f"{foreign}: something other than the Supervisor's control plane answers at {answer.address} "
                         f"(see the server rows: another load balancer, an address used twice?).")
        return Check(check, expected, found, "ok")
    fix = _HANDSHAKE_FIX[answer.cause].format(vip=answer.address, port=answer.port, ca=facts.ca_described)
    if answer.cause == "refused" and facts.load_balancer is not None:
        _, frontend = _the_frontend(view, facts.load_balancer)
        if frontend is not None and port not in {b.port for b in frontend.binds if b.address == view.endpoint}:
            bound = ", ".join(str(b) for b in frontend.binds if b.address == view.endpoint) or "nothing"
            fix = (f"nothing listens on {view.endpoint}:{port}: the Supervisor's frontend {frontend.name} binds "
                   f"{bound} but not {view.endpoint}:{port}, which the Supervisor's load-balancer controller binds "
                   f"with the others; read the Supervisor's messages.")
    tried = f" ({len(tries)} tries)" if len(tries) > 1 else ""
    return Check(check, expected, f"{answer.cause}: {answer.detail}{tried}", "failed", fix)


def _the_frontend(view: SupervisorView, state: Optional[LoadBalancerState]) -> tuple[str, Optional[Frontend]]:
    """The Supervisor's virtual IP (its endpoint, else the address a frontend binds on 6443 inside the
    virtual IP ranges, as while it configures) and the frontend that binds it (None: no frontend does)."""
    if state is None:
        return view.endpoint, None
    vip = view.endpoint
    if not vip:
        ranges = _ranges_set(view)
        vip = next((b.address for f in state.frontends for b in f.binds
                    if b.port == API_PORT and netaddr.valid_ipv4(b.address) and netaddr.IPAddress(b.address) in ranges),
                   "")
    return vip, next((f for f in state.frontends if vip and any(b.address == vip for b in f.binds)), None)


def port_backends(frontend: Frontend, state: LoadBalancerState) -> dict[int, tuple[str, list[BackendServer]]]:
    """Each Supervisor port: the backend the frontend sends it to ("" for none) and that backend's servers."""
    return {port: (frontend.backend_for(port), state.servers.get(frontend.backend_for(port)) or [])
            for port in SUPERVISOR_PORTS}


def _load_balancer_rows(facts: SupervisorFacts) -> list[Check]:
    view, state = facts.view, facts.load_balancer
    ports = " and ".join(str(p) for p in SUPERVISOR_PORTS)
    if state is None:
        why = facts.problems.get("data plane api", "not read")
        return [_not_checked("HAProxy frontend for the Supervisor's virtual IP", f"binds on {ports} (Data Plane API)",
                             f"could not be read: {why}")]
    vip, frontend = _the_frontend(view, state)
    check = f"HAProxy frontend for {vip or 'the Supervisor'}"
    expected = " and ".join(f"{vip or '<virtual IP>'}:{p}" for p in SUPERVISOR_PORTS) + " bound (its configuration)"
    if frontend is None:
        where = vip or f"an address of the virtual IP ranges on {API_PORT}"
        return [Check(check, expected, f"no frontend binds {where} ({len(state.frontends)} frontends)", "failed",
                      "the Supervisor's load-balancer controller has not programmed the appliance: read the "
                      "Supervisor's messages (its row); check the Data Plane API user, password and CA chain given "
                      "to Workload Management.")]
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
    return rows + _backend_rows(facts, frontend, state)


def _backend_rows(facts: SupervisorFacts, frontend: Frontend, state: LoadBalancerState) -> list[Check]:
    """Each backend the Supervisor's ports go to: its servers, each judged once (with every port it serves)."""
    rows: list[Check] = []
    ports_of: dict[str, list[int]] = {}
    bound = {b.port for b in frontend.binds}
    for port, (backend, _) in port_backends(frontend, state).items():
        if port not in bound:  # the frontend's row says so
            continue
        if not backend:
            rows.append(Check(f"HAProxy backend for {frontend.name} port {port}", "the control-plane servers",
                              "none: no rule sends the port anywhere and there is no default backend", "failed",
                              f"frontend {frontend.name} sends its connections on port {port} nowhere: the "
                              f"Supervisor's load-balancer controller adds `use_backend ... if {{ dst_port {port} }}` "
                              f"and its backend; read the Supervisor's messages."))
            continue
        ports_of.setdefault(backend, []).append(port)
    for backend, ports in ports_of.items():
        rows += _server_rows(facts, frontend, backend, ports, state)
    return rows


def _server_rows(facts: SupervisorFacts, frontend: Frontend, backend: str, ports: list[int],
                 state: LoadBalancerState) -> list[Check]:
    view = facts.view
    configured = state.servers.get(backend)
    if not configured:
        return [Check(f"HAProxy backend {backend}", "the control-plane servers", "no server", "failed",
                      f"frontend {frontend.name} sends its connections to a backend without servers: the Supervisor's "
                      f"load-balancer controller fills it with the control-plane VMs; read the Supervisor's "
                      f"messages.")]
    control_plane = view.control_plane_addresses
    expected = (f"a control-plane VM ({', '.join(control_plane)}, the first three of the primary workload network's "
                f"range), up, its health check passed, answering as the Supervisor" if control_plane else
                "up, its health check passed, answering as the Supervisor")
    running = state.runtime.get(backend)
    rows = []
    for server in configured:
        check = f"HAProxy server {server.name} of {backend} ({server})"
        held = next((r for r in running or () if r.name == server.name), None)
        if held is None:
            rows.append(Check(check, expected, "not in HAProxy's running configuration", "failed",
                              f"HAProxy does not run backend {backend} (see the row of frontend {frontend.name})."))
            continue
        stat = state.server_stat(backend, server.name)
        health = " ".join(p for p in (stat.check_status, stat.check_desc) if p) if stat else ""
        found = held.operational_state + (f" ({health})" if health else "") + (
            f", {held.admin_state}" if held.admin_state and held.admin_state != "ready" else "")
        answers = [facts.server_handshakes[(server.address, server.port or port)] for port in ports
                   if (server.address, server.port or port) in facts.server_handshakes]
        found += "".join(f"; {_answered(a)}" for a in answers)
        rows.append(_server_row(view, server, check, expected, found, held, stat, answers))
    present = {s.address for s in configured}
    absent = [a for a in control_plane if a not in present]
    if absent:
        rows.append(Check(f"HAProxy backend {backend}",
                          f"a server for each control-plane VM ({', '.join(control_plane)})",
                          f"none for {', '.join(absent)}", "warning",
                          f"HAProxy sends nothing to {', '.join(absent)}, so the Supervisor's API rests on fewer "
                          f"control-plane VMs than it has: the Supervisor's load-balancer controller lists them all; "
                          f"read its messages."))
    return rows


def _answered(answer: Handshake) -> str:
    where = f"{answer.address}:{answer.port}"
    if answer.ok:
        return f"TLS on {where}: {answer.answered_by}, issued by {answer.issuer or 'an unnamed CA'}"
    return f"TLS on {where}: {answer.cause}: {answer.detail}"


_NOT_THE_SUPERVISORS = ("untrusted", "other name", "expired")


def _server_row(view: SupervisorView, server: BackendServer, check: str, expected: str, found: str, held, stat,
                answers: list[Handshake]) -> Check:
    """One server of a backend the Supervisor's ports go to: the Supervisor's own (a control-plane address,
    answering with the Supervisor's certificate for the virtual IP), then up as HAProxy checks it."""
    control_plane = view.control_plane_addresses
    if control_plane and server.address not in control_plane:
        return Check(check, expected, found, "failed",
                     f"{server.name} ({server.address}) is not a control-plane VM of the Supervisor: vCenter gives "
                     f"its control plane {', '.join(control_plane)} on the primary workload network, so HAProxy sends "
                     f"the Supervisor's connections to another machine; the Supervisor's load-balancer controller "
                     f"writes these servers, so something else changed them: remove {server.name} from the backend "
                     f"(the controller puts its own back), and find who programs the appliance besides the "
                     f"Supervisor.")
    for answer in answers:
        foreign = _not_its_own(view, answer) if answer.ok else (
            f"it answers {answer.address}:{answer.port} with a certificate that will not do ({answer.cause}: "
            f"{answer.detail})" if answer.cause in _NOT_THE_SUPERVISORS else "")
        if foreign:
            return Check(check, expected, found, "failed",
                         f"{server.name} ({server.address}) is not the Supervisor's: {foreign}; HAProxy sends it the "
                         f"Supervisor's connections in turn with the others, so remove it from the backend and find "
                         f"what answers at {server.address}.")
    port = server.check_port or server.port or API_PORT
    up = held.operational_state == "up"  # also before HAProxy's first health check (see PASSED_CHECKS)
    if held.admin_state not in ("", "ready"):
        return Check(check, expected, found, "failed",
                     f"{server.name} is in {held.admin_state} on HAProxy (set by hand or by a controller): HAProxy "
                     f"sends it nothing until it is ready again.")
    if up and stat is not None and stat.check_passed:
        refused = [a for a in answers if a.cause in ("refused", "closed")]
        if refused:
            return Check(check, expected, found, "failed",
                         f"HAProxy checks {server.name} on {server.address}:{port} and finds it up, but "
                         f"{refused[0].address}:{refused[0].port}, where HAProxy sends the Supervisor's connections, "
                         f"does not answer TLS ({refused[0].cause}): its service on that port is down; see the "
                         f"Supervisor's control-plane VMs in vCenter.")
        unreached = [a for a in answers if not a.ok]
        if unreached:
            return Check(check, expected, found, "warning",
                         f"HAProxy finds {server.name} up, but its certificate could not be read from here "
                         f"({unreached[0].cause}), so nothing says it is the Supervisor's: run the checks from where "
                         f"the workload network is reached (the frontend and workload networks route to each other).")
        return Check(check, expected, found, "ok")
    if up and stat is not None and not stat.checked:
        return Check(check, expected, found, "warning",
                     f"HAProxy does not check {server.name}'s health, so it sends it connections whether or not its "
                     f"API server answers: the Supervisor's load-balancer controller normally enables the check; "
                     f"read the Supervisor's messages.")
    if up and (stat is None or stat.last_check in NOT_CHECKED_YET):
        said = f" ({stat.last_check})" if stat is not None and stat.last_check else ""
        return Check(check, expected, found, "failed",
                     f"HAProxy has not completed a health check of {server.address}:{port} yet{said}, and reports a "
                     f"server up until its first check, so nothing yet says {server.name} answers: run the checks "
                     f"again in a few seconds; if it stays so, read /var/log/haproxy.log on the appliance.")
    return Check(check, expected, found, "failed",
                 f"HAProxy's health check of {server.address}:{port} fails: the control-plane VM {server.name} or its "
                 f"API server is down, or unreachable from the appliance's workload interface; the other servers "
                 f"carry the traffic meanwhile. See the Supervisor's control-plane VMs in vCenter.")


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
    for route in anyip_local_routes(list(local_routes)):
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
    return [_status_row(facts.view), *(_handshake_row(facts, port) for port in SUPERVISOR_PORTS),
            *_load_balancer_rows(facts), *_range_rows(facts, site_ranges)]
