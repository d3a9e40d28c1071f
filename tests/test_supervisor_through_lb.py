"""The Supervisor through the load balancer: the vCenter simulator's Workload Management stand-in
plays the Supervisor (its control plane on the lab's workload bridge, a load-balancer controller
programming the simulated appliance's real HAProxy), and the product's checks find it answering, a
control-plane server down, a return route missing, and the field's fault: a virtual IP range
Workload Management uses that the appliance's anyip-routes.cfg lacks, which keeps the Supervisor
CONFIGURING with HAProxy's "cannot bind socket" until the repair stage extends the file.

The judging functions are tested on values first, with no simulator at all. Then one appliance and
one simulator with a running Supervisor serve the tests that leave them as they found them; the
field's fault has its own pair. Everything runs inside the namespaces the simulators make.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import Optional

import pytest

from appliance_fixtures import DATAPLANE_PASSWORD, ROOT_PASSWORD
from supervisor_fixtures import VIP, checks_when, end, statuses_until, supervise
from tkgs_lib.appliance.checks import Check, checks_table
from tkgs_lib.appliance.dataplane import DataPlaneInfo
from tkgs_lib.appliance.facts import ConfigText, Route
from tkgs_lib.appliance.load_balancer import (LoadBalancerState, frontends_from, native_stats_from,
                                              runtime_servers_from, servers_from)
from tkgs_lib.appliance.supervisor_checks import SupervisorFacts, SupervisorView, VirtualIpRange, supervisor_checks
from tkgs_lib.appliance.supervisor_endpoint import Handshake, fingerprint_of, handshake
from tkgs_lib.vsphere.namespace_management import messages_of

SITE_RANGES = ["10.64.1.0/24"]
SERVERS = {"supervisor-cp-1": "10.64.8.50", "supervisor-cp-2": "10.64.8.51", "supervisor-cp-3": "10.64.8.52"}
NAME = "supervisor-control-plane"
# A real Supervisor's controller: a backend per port, chosen by `use_backend ... if { dst_port <port> }`
# (ritsz/ritsz.github.io, _posts/2021-7-24-Notes-on-HAProxy.md), as the stand-in's controller programs it.
BACKENDS = {6443: f"{NAME}-kube-apiserver", 443: f"{NAME}-nginx"}
SERVER_ROWS = [f"HAProxy server {n} of {BACKENDS[p]} ({a}:{p})" for p in (6443, 443) for n, a in SERVERS.items()]


# --- the judging, on values ----------------------------------------------------------------------

def view(**changes) -> SupervisorView:
    values = dict(cluster="domain-c8", config_status="RUNNING", endpoint=VIP, load_balancer="haproxy-lb",
                  virtual_ip_ranges=(VirtualIpRange(VIP, 256),), dataplane_servers=(("10.64.2.10", 5556),),
                  dataplane_username="admin", workload_ranges=(VirtualIpRange("10.64.8.50", 100),),
                  management_endpoint="10.64.2.20", api_servers=("10.64.2.21", "10.64.2.22", "10.64.2.23"))
    return SupervisorView(**{**values, **changes})


def balanced(*, running: bool = True, down: tuple[str, ...] = (), stats: Optional[dict] = None,
             servers: Optional[dict] = None, ports: tuple[int, ...] = (6443, 443)) -> LoadBalancerState:
    """The Data Plane API's answers for a programmed appliance, as recorded from the stand-in; ``stats``: a
    server's `show stat` values in place of up_stats; ``servers``: the backends' servers in place of the control
    plane's; ``ports``: the binds the frontend holds."""
    servers = SERVERS if servers is None else servers
    frontends = frontends_from({"_version": 3, "data": [{"name": NAME, "mode": "tcp"}]},
                               {NAME: {"_version": 3, "data": [{"name": f"{NAME}-{p}", "address": VIP, "port": p}
                                                               for p in ports]}},
                               {NAME: {"_version": 3, "data": [{"index": i, "name": b, "cond": "if",
                                                                "cond_test": f"{{ dst_port {p} }}"}
                                                               for i, (p, b) in enumerate(BACKENDS.items())]}})
    down_stats = {"status": "DOWN", "check_status": "L4CON", "check_desc": "Layer4 connection problem"}  # HAProxy's
    up_stats = {"status": "UP", "check_status": "L4OK", "check_desc": "Layer4 check passed"}
    rows = [{"name": NAME, "type": "frontend", "stats": {"status": "OPEN"}}]
    configured, runtime = {}, {}
    for port, backend in BACKENDS.items():
        rows += [{"name": backend, "type": "backend", "stats": {"status": "UP"}}] + [
            {"name": n, "type": "server", "backend_name": backend,
             "stats": down_stats if n in down else (stats or {}).get(n, up_stats)} for n in servers]
        configured[backend] = servers_from({"_version": 3, "data": [{"name": n, "address": a, "port": port,
                                                                     "check": "enabled"} for n, a in servers.items()]})
        runtime[backend] = runtime_servers_from([
            {"name": n, "address": a, "operational_state": "down" if n in down else "up", "admin_state": "ready",
             "id": str(i)} for i, (n, a) in enumerate(servers.items())]) if running else None
    native = native_stats_from([{"runtimeAPI": "/run/haproxy.sock", "stats": rows if running else []}])
    return LoadBalancerState(DataPlaneInfo("2.1.0", "", "https://10.64.2.10:5556/v2/info"), frontends, native,
                             configured, runtime)


def answers(name: str, address: str, port: int, *, issuer: str = "vcenter", via: str = "") -> Handshake:
    """A handshake that completed: with the virtual IP (``via`` "") or with a server for it (``via`` VIP)."""
    return Handshake(via or VIP, port, "TLSv1.3", name, issuer, (name,), (address, VIP), name=via and VIP,
                     fingerprint=hashlib.sha256(name.encode()).hexdigest())


def facts(**changes) -> SupervisorFacts:
    values = dict(view=view(), handshakes={p: (answers("supervisor-cp-2", "10.64.8.51", p),) for p in (6443, 443)},
                  server_handshakes={(a, p): answers(n, a, p, via=a) for n, a in SERVERS.items() for p in (6443, 443)},
                  load_balancer=balanced(), anyip_file=ConfigText(("10.64.1.0/24",)),
                  local_routes=[Route("10.64.1.0/24", "local", "lo", scope="host")], ca_described="vcenter.ca_file")
    return SupervisorFacts(**{**values, **changes})


def row(checks: list[Check], starts: str) -> Check:
    [found] = [c for c in checks if c.check.startswith(starts)]
    return found


def test_a_supervisor_served_through_the_load_balancer_passes_every_row():
    checks = supervisor_checks(facts(), SITE_RANGES)
    assert [c.check for c in checks] == [
        "Supervisor of domain-c8", f"TLS to the Supervisor's API {VIP}:6443",
        f"TLS to the Supervisor's login {VIP}:443", f"HAProxy frontend for {VIP}", f"HAProxy runs frontend {NAME}",
        *SERVER_ROWS, f"virtual IP range {VIP} + 256 (10.64.1.0-10.64.1.255)"]
    assert {c.status for c in checks} == {"ok"}, checks_table(checks).to_text()
    assert row(checks, "TLS to the Supervisor's API").found == ("TLSv1.3 handshake, answered by supervisor-cp-2 "
                                                                "(10.64.8.51), certificate issued by vcenter")
    assert row(checks, "HAProxy frontend").found == f"frontend {NAME}: {VIP}:6443, {VIP}:443"
    assert row(checks, SERVER_ROWS[0]).found == ("up (L4OK Layer4 check passed); TLS on 10.64.8.50:6443: "
                                                 "supervisor-cp-1 (10.64.8.50), issued by vcenter")
    assert row(checks, "virtual IP range").found == ("inside 10.64.1.0/24, a line of /etc/vmware/anyip-routes.cfg; "
                                                     "local routes present")


def test_a_range_is_shown_inside_the_lines_the_file_holds_not_as_the_blocks_it_splits_into():
    """The article's virtual IPs, its /24 less the broadcast address, once read as eight blocks
    10.64.1.0/25, 10.64.1.128/26, ... (/etc/vmware/anyip-routes.cfg): the file holds one line."""
    usable = view(virtual_ip_ranges=(VirtualIpRange(VIP, 255),))
    vips = row(supervisor_checks(facts(view=usable), SITE_RANGES), "virtual IP range")
    assert (vips.check, vips.status) == (f"virtual IP range {VIP} + 255 (10.64.1.0-10.64.1.254)", "ok")
    assert vips.found == "inside 10.64.1.0/24, a line of /etc/vmware/anyip-routes.cfg; local routes present"
    halves = facts(view=usable, anyip_file=ConfigText(("10.64.1.0/25", "10.64.1.128/25", "10.64.9.0/24")),
                   local_routes=[Route("10.64.1.0/25", "local", "lo"), Route("10.64.1.128/25", "local", "lo")])
    vips = row(supervisor_checks(halves, SITE_RANGES), "virtual IP range")
    assert vips.found == ("inside 10.64.1.0/25, 10.64.1.128/25, lines of /etc/vmware/anyip-routes.cfg; local routes "
                          "present")
    unrouted = row(supervisor_checks(facts(view=usable, local_routes=[]), SITE_RANGES), "virtual IP range")
    assert unrouted.found == "10.64.1.0/24, a line of /etc/vmware/anyip-routes.cfg, without a local route"
    assert unrouted.fix.startswith("anyip-routes.service did not add the local route for 10.64.1.0/24:")


def test_a_range_the_site_lacks_is_named_with_the_fix_that_extends_anyip_routes():
    checks = supervisor_checks(facts(view=view(virtual_ip_ranges=(VirtualIpRange(VIP, 256),
                                                                  VirtualIpRange("10.64.0.200", 8)))), SITE_RANGES)
    new = row(checks, "virtual IP range 10.64.0.200")
    assert new.status == "failed"
    assert new.found.startswith("10.64.0.200/29 not in /etc/vmware/anyip-routes.cfg (it holds 10.64.1.0/24)")
    assert new.fix == ("Workload Management was given 10.64.0.200/29, which the appliance does not serve, so HAProxy "
                       "cannot bind those virtual IPs ('cannot bind socket'): add 10.64.0.200/29 to "
                       "haproxy.load_balancer_ranges, then run the repair stage, which extends "
                       "/etc/vmware/anyip-routes.cfg.")
    assert row(checks, f"virtual IP range {VIP}").status == "ok"


def test_a_range_the_site_holds_but_the_appliance_lacks_says_run_the_repair_stage():
    checks = supervisor_checks(facts(anyip_file=ConfigText(("10.64.1.128/25", "10.64.0.1/23")),
                                     local_routes=[Route("10.64.1.128/25", "local", "lo")]), SITE_RANGES)
    vips = row(checks, "virtual IP range")
    assert vips.status == "failed"
    # 10.64.0.1/23 has host bits set: the kernel refuses it, so it serves nothing
    assert vips.found == ("10.64.1.0/25 not in /etc/vmware/anyip-routes.cfg (it holds 10.64.1.128/25, 10.64.0.1/23)")
    assert "10.64.1.0/25 is in the site's haproxy.load_balancer_ranges but not in the appliance's " \
           "/etc/vmware/anyip-routes.cfg" in vips.fix and "run the repair stage" in vips.fix


def test_a_range_in_the_file_without_its_local_route_points_at_the_unit():
    checks = supervisor_checks(facts(local_routes=[]), SITE_RANGES)
    vips = row(checks, "virtual IP range")
    assert (vips.status, vips.found) == ("failed", "10.64.1.0/24, a line of /etc/vmware/anyip-routes.cfg, without a "
                                                   "local route")
    assert vips.fix.startswith("anyip-routes.service did not add the local route for 10.64.1.0/24")


def test_a_server_down_fails_its_own_rows_only():
    checks = supervisor_checks(facts(load_balancer=balanced(down=("supervisor-cp-2",))), SITE_RANGES)
    failed = [c for c in checks if c.failed]
    assert [c.check for c in failed] == [f"HAProxy server supervisor-cp-2 of {BACKENDS[p]} (10.64.8.51:{p})"
                                         for p in (6443, 443)]
    assert failed[0].found.startswith("down (L4CON Layer4 connection problem)")  # HAProxy's words
    assert failed[0].fix.startswith("HAProxy's health check of 10.64.8.51:6443 fails: the control-plane VM "
                                    "supervisor-cp-2 or its API server is down")


def test_a_server_haproxy_has_not_checked_yet_is_not_up():
    """HAProxy 2.6's `show stat` for a checked server before its first check (recorded): status 'UP 1/3',
    check_status INI, while `show servers state` says srv_op_state 2, which Data Plane API 2.1 reports
    as operational_state up."""
    recorded = {"status": "UP 1/3", "check_status": "INI", "check_desc": "Initializing"}
    initializing = balanced(stats={"supervisor-cp-3": recorded})
    assert initializing.awaiting_first_check() == [f"{b}/supervisor-cp-3" for b in BACKENDS.values()]  # enable waits
    checks = supervisor_checks(facts(load_balancer=initializing), SITE_RANGES)
    failed = [c for c in checks if c.status != "ok"]
    assert [(c.check, c.status, c.found.split(";")[0]) for c in failed] == [
        (f"HAProxy server supervisor-cp-3 of {BACKENDS[p]} (10.64.8.52:{p})", "failed", "up (INI Initializing)")
        for p in (6443, 443)]
    assert failed[0].fix.startswith("HAProxy has not completed a health check of 10.64.8.52:6443 yet (INI)")
    # a check in progress reports the last one after "* ": it passed, so the server is up
    running = {"status": "UP", "check_status": "* L4OK", "check_desc": "Layer4 check passed"}
    checks = supervisor_checks(facts(load_balancer=balanced(stats={"supervisor-cp-3": running})), SITE_RANGES)
    assert {c.status for c in checks} == {"ok"}
    assert balanced(stats={"supervisor-cp-3": running}).awaiting_first_check() == []
    unchecked = {"status": "no check"}  # HAProxy's words for a server without a health check
    checks = supervisor_checks(facts(load_balancer=balanced(stats={"supervisor-cp-3": unchecked})), SITE_RANGES)
    assert [(c.check, c.status) for c in checks if c.status != "ok"] == [
        (f"HAProxy server supervisor-cp-3 of {BACKENDS[p]} (10.64.8.52:{p})", "warning") for p in (6443, 443)]


def test_a_supervisor_stuck_configuring_on_a_bind_reads_as_the_field_meets_it():
    said = ("WARNING: Load balancer 'haproxy-lb': ... Reload failed: [ALERT] (1) : Starting frontend "
            "supervisor-control-plane: cannot bind socket (Cannot assign requested address) for [10.64.1.0:6443].")
    checks = supervisor_checks(facts(view=view(config_status="CONFIGURING", endpoint="", messages=(said,)),
                                     handshakes={}, load_balancer=balanced(running=False),
                                     anyip_file=ConfigText(("10.64.1.128/25",)),
                                     local_routes=[Route("10.64.1.128/25", "local", "lo")]), SITE_RANGES)
    status = {c.check: c.status for c in checks}
    assert status == {"Supervisor of domain-c8": "failed",
                      "TLS to the Supervisor's API endpoint (6443)": "not checked",
                      "TLS to the Supervisor's login endpoint (443)": "not checked",
                      f"HAProxy frontend for {VIP}": "ok",  # the configuration holds it (the reload failed)
                      f"HAProxy runs frontend {NAME}": "failed", **{name: "failed" for name in SERVER_ROWS},
                      f"virtual IP range {VIP} + 256 (10.64.1.0-10.64.1.255)": "failed"}
    assert row(checks, "Supervisor").fix.startswith("HAProxy cannot bind the Supervisor's virtual IP")
    assert row(checks, "HAProxy runs").found == "not running: HAProxy serves a configuration without it"
    assert "outside the appliance's anyip ranges" in row(checks, "HAProxy runs").fix


@pytest.mark.parametrize("cause, words", [
    ("connect timeout", "a return route is missing"), ("refused", "nothing listens on 10.64.1.0:6443"),
    ("unreachable", "no route to 10.64.1.0"), ("closed", "no control-plane server did"),
    ("untrusted", "give vcenter.ca_file the VMCA root certificate"), ("other name", "does not name 10.64.1.0"),
    ("expired", "has expired"), ("no CA", "give vcenter.ca_file"), ("handshake timeout", "see the server rows")])
def test_each_way_the_handshake_fails_has_its_cause_and_fix(cause, words):
    checks = supervisor_checks(facts(handshakes={6443: (Handshake(VIP, 6443, cause=cause, detail="its words"),),
                                                 443: (answers("supervisor-cp-2", "10.64.8.51", 443),)}), SITE_RANGES)
    tls = row(checks, "TLS to the Supervisor's API")
    assert (tls.status, tls.found) == ("failed", f"{cause}: its words")
    assert words in tls.fix


def test_an_answer_from_outside_the_control_plane_is_not_the_supervisors():
    other = Handshake(VIP, 6443, "TLSv1.3", "web", "vcenter", (), ("10.64.0.77", VIP))
    tls = row(supervisor_checks(facts(handshakes={6443: (other,), 443: (other,)}), SITE_RANGES),
              "TLS to the Supervisor's API")
    assert tls.status == "failed" and tls.fix.startswith(
        "its certificate names 10.64.0.77, none an address vCenter gives the Supervisor's control plane (10.64.8.50, "
        "10.64.8.51, 10.64.8.52, 10.64.2.21, 10.64.2.22, 10.64.2.23, 10.64.2.20)")


# --- 443 as 6443: kubectl vsphere login starts at https://<VIP>/wcp/loginbanner ---------------------

def test_a_frontend_that_binds_6443_but_not_443_fails_the_443_row_naming_it():
    refused = Handshake(VIP, 443, cause="refused", detail="the connection was refused")
    checks = supervisor_checks(facts(load_balancer=balanced(ports=(6443,)),
                                     handshakes={6443: (answers("supervisor-cp-1", "10.64.8.50", 6443),),
                                                 443: (refused,)}), SITE_RANGES)
    assert [c.check for c in checks if c.status != "ok"] == [f"TLS to the Supervisor's login {VIP}:443",
                                                             f"HAProxy frontend for {VIP}"]
    login = row(checks, "TLS to the Supervisor's login")
    assert login.found == "refused: the connection was refused"
    assert login.fix.startswith(f"nothing listens on {VIP}:443: the Supervisor's frontend {NAME} binds {VIP}:6443 but "
                                f"not {VIP}:443")
    assert login.expected.endswith("(kubectl vsphere login starts there: /wcp/loginbanner, /wcp/login)")


def test_a_backend_broken_for_443_fails_the_443_rows_and_names_its_servers():
    """The nginx backend's servers down (HAProxy checks each on 443): HAProxy takes 443's connections and
    closes them, every try; 6443 answers."""
    closed = Handshake(VIP, 443, cause="closed", detail="UNEXPECTED_EOF_WHILE_READING")
    state = balanced()
    for name in SERVERS:
        state.runtime[BACKENDS[443]] = [r if r.name != name else type(r)(r.name, r.address, "down", "ready")
                                        for r in state.runtime[BACKENDS[443]]]
    state.stats[:] = [st if not (st.backend == BACKENDS[443] and st.type == "server") else
                      type(st)(st.type, st.name, st.backend, "DOWN", "L4CON", "Connection refused")
                      for st in state.stats]
    refused = {(a, 443): Handshake(a, 443, cause="refused", detail="the connection was refused", name=VIP)
               for a in SERVERS.values()}
    checks = supervisor_checks(facts(load_balancer=state, handshakes={
        6443: (answers("supervisor-cp-1", "10.64.8.50", 6443),), 443: (closed, closed, closed)},
        server_handshakes={**facts().server_handshakes, **refused}), SITE_RANGES)
    assert [c.check for c in checks if c.status != "ok"] == [f"TLS to the Supervisor's login {VIP}:443",
                                                             *SERVER_ROWS[3:]]
    assert row(checks, "TLS to the Supervisor's login").found == "closed: UNEXPECTED_EOF_WHILE_READING (3 tries)"
    assert row(checks, SERVER_ROWS[3]).found == ("down (L4CON Connection refused); TLS on 10.64.8.50:443: refused: the "
                                                 "connection was refused")


def test_one_backend_for_both_ports_checked_on_6443_still_fails_a_server_that_refuses_443():
    """A controller's other layout: one default backend, servers on the port the client asked for, checked on
    6443: HAProxy finds them up while 443 refuses, so only the handshakes with each server say so."""
    state = balanced()
    state.frontends = frontends_from({"_version": 3, "data": [{"name": NAME, "mode": "tcp", "default_backend": NAME}]},
                                     {NAME: {"_version": 3, "data": [{"name": f"{NAME}-{p}", "address": VIP, "port": p}
                                                                     for p in (6443, 443)]}})
    state.servers = {NAME: servers_from({"_version": 3, "data": [
        {"name": n, "address": a, "check": "enabled", "health_check_port": 6443} for n, a in SERVERS.items()]})}
    state.runtime = {NAME: state.runtime[BACKENDS[6443]]}
    state.stats[:] = [type(st)(st.type, st.name, NAME, st.status, st.check_status, st.check_desc)
                      if st.type == "server" else st for st in state.stats]
    handshakes = {**facts().server_handshakes,
                  ("10.64.8.52", 443): Handshake("10.64.8.52", 443, cause="refused", detail="refused", name=VIP)}
    checks = supervisor_checks(facts(load_balancer=state, server_handshakes=handshakes), SITE_RANGES)
    [broken] = [c for c in checks if c.status != "ok"]
    assert broken.check == f"HAProxy server supervisor-cp-3 of {NAME} (10.64.8.52)"
    assert broken.fix.startswith("HAProxy checks supervisor-cp-3 on 10.64.8.52:6443 and finds it up, but "
                                 "10.64.8.52:443, where HAProxy sends the Supervisor's connections, does not answer "
                                 "TLS")


# --- servers that are not the Supervisor's -----------------------------------------------------------

def test_a_server_with_a_foreign_certificate_fails_its_rows_however_the_round_robin_falls():
    """HAProxy's backends at .50, .51 and a server with a certificate vCenter's CA did not sign: whichever server
    the one handshake with the virtual IP met, the server's own handshake names it."""
    foreign = {(a, p): Handshake(a, p, cause="untrusted", detail="unable to get local issuer certificate", name=VIP)
               for a in ("10.64.8.52",) for p in (6443, 443)}
    checks = supervisor_checks(facts(server_handshakes={**facts().server_handshakes, **foreign}), SITE_RANGES)
    failed = [c for c in checks if c.status != "ok"]
    assert [c.check for c in failed] == [SERVER_ROWS[2], SERVER_ROWS[5]]
    assert failed[0].found == ("up (L4OK Layer4 check passed); TLS on 10.64.8.52:6443: untrusted: unable to get local "
                               "issuer certificate")
    assert failed[0].fix.startswith("supervisor-cp-3 (10.64.8.52) is not the Supervisor's: it answers 10.64.8.52:6443 "
                                    "with a certificate that will not do (untrusted:")


def test_impostors_signed_by_vcenters_ca_at_addresses_not_the_control_planes_fail_naming_each():
    """Every backend server an impostor whose certificate vCenter's CA signed (it names the virtual IP and its own
    address): the control plane vCenter gives is .50-.52."""
    impostors = {"supervisor-cp-1": "10.64.8.99", "supervisor-cp-2": "10.64.8.98", "supervisor-cp-3": "10.64.8.97"}
    checks = supervisor_checks(facts(
        load_balancer=balanced(servers=impostors),
        handshakes={p: (answers("supervisor-cp-1", "10.64.8.99", p),) for p in (6443, 443)},
        server_handshakes={(a, p): answers(n, a, p, via=a) for n, a in impostors.items() for p in (6443, 443)}),
        SITE_RANGES)
    failed = {c.check: c for c in checks if c.status != "ok"}
    assert list(failed) == [f"TLS to the Supervisor's API {VIP}:6443", f"TLS to the Supervisor's login {VIP}:443",
                            *[name for p, b in BACKENDS.items() for name in (
                                *[f"HAProxy server {n} of {b} ({a}:{p})" for n, a in impostors.items()],
                                f"HAProxy backend {b}")]]
    tls = failed[f"TLS to the Supervisor's API {VIP}:6443"]
    assert tls.found == "TLSv1.3 handshake, answered by supervisor-cp-1 (10.64.8.99), certificate issued by vcenter"
    assert tls.fix.startswith("its certificate names 10.64.8.99, none an address vCenter gives the Supervisor's "
                              "control plane")
    first = failed[f"HAProxy server supervisor-cp-1 of {BACKENDS[6443]} (10.64.8.99:6443)"]
    assert first.status == "failed" and first.fix.startswith(
        "supervisor-cp-1 (10.64.8.99) is not a control-plane VM of the Supervisor: vCenter gives its control plane "
        "10.64.8.50, 10.64.8.51, 10.64.8.52 on the primary workload network")
    assert failed[f"HAProxy backend {BACKENDS[6443]}"].status == "warning"  # and none of the control plane's is there


def test_a_certificate_that_is_not_the_one_vcenter_reports_for_the_api_is_not_the_supervisors(tmp_path):
    from appliance_material import write_ca

    cert = Path(write_ca(tmp_path / "api")[0]).read_text()  # any certificate other than the one that answered
    checks = supervisor_checks(facts(view=view(tls_endpoint_certificate=cert)), SITE_RANGES)
    failed = [c for c in checks if c.status != "ok"]
    assert [c.check for c in failed] == [f"TLS to the Supervisor's API {VIP}:6443",
                                         f"TLS to the Supervisor's login {VIP}:443", *SERVER_ROWS]
    assert "is not the one vCenter reports for the Supervisor's API through the load balancer " \
           "(tls_endpoint_certificate, SHA-256 " in failed[0].fix
    # The very certificate vCenter reports answers everywhere: every row passes.
    theirs = fingerprint_of(cert)
    same = facts(view=view(tls_endpoint_certificate=cert),
                 handshakes={p: (replace(answers("supervisor-cp-2", "10.64.8.51", p), fingerprint=theirs),)
                             for p in (6443, 443)},
                 server_handshakes={(a, p): replace(answers(n, a, p, via=a), fingerprint=theirs)
                                    for n, a in SERVERS.items() for p in (6443, 443)})
    assert {c.status for c in supervisor_checks(same, SITE_RANGES)} == {"ok"}


def test_unreadable_facts_are_not_checked_with_why():
    checks = supervisor_checks(facts(load_balancer=None, anyip_file=None,
                                     problems={"data plane api": "refused (HTTP 401)",
                                               "/etc/vmware/anyip-routes.cfg": "cat failed"}), SITE_RANGES)
    assert [(c.status, c.found) for c in checks[3:]] == [
        ("not checked", "could not be read: refused (HTTP 401)"), ("not checked", "could not be read: cat failed")]


# --- against the simulators --------------------------------------------------------------------

@pytest.fixture(scope="module")
def running(vcsim_module, tmp_path_factory):
    supervised = supervise(vcsim_module, tmp_path_factory.mktemp("supervisor"))
    try:
        statuses_until(supervised, lambda info: info.config_status == "RUNNING", "the Supervisor RUNNING")
        checks_when(supervised, lambda checks: {c.status for c in checks} == {"ok"}, "every server up", timeout=15)
        yield supervised
    finally:
        end(supervised)


@pytest.mark.slow
@pytest.mark.vcsim
def test_enabled_the_supervisor_runs_and_its_virtual_ip_answers_end_to_end(running):
    assert running.seen[0] == "CONFIGURING" and running.seen[-1] == "RUNNING"
    info = running.info()
    assert info.api_server_cluster_endpoint == VIP and messages_of(info) == []
    control_plane = running.vcsim.control_plane(running.cluster)
    assert {s.name: s.address for s in control_plane.servers} == SERVERS  # the primary workload range's first three
    assert control_plane.lab == running.sim.lab

    # From the lab's frontend side, through the appliance's HAProxy, TLS verified against vCenter's own CA.
    answered = {running.sim.in_lab(lambda: handshake(VIP, running.vcsim.ca_file, timeout=5)).subject
                for _ in range(6)}
    assert answered == set(SERVERS)  # round robin: every control-plane server in turn
    assert {control_plane.who_answers(VIP, 443) for _ in range(3)} == set(SERVERS)  # HTTPS answers through 443 too
    appliance_ca = running.lab.site_file.parent / "appliance-ca.pem"
    appliance_ca.write_text(running.sim.ca_pem)
    other = running.sim.in_lab(lambda: handshake(VIP, appliance_ca, timeout=5))
    assert other.cause == "untrusted"  # HAProxy passes the control plane's own TLS through: not the appliance's

    checks = running.checks()
    assert {c.status for c in checks} == {"ok"}, checks_table(checks).to_text()
    tls = row(checks, "TLS to the Supervisor's API")
    assert tls.check == f"TLS to the Supervisor's API {VIP}:6443"
    assert tls.expected == (f"a handshake verified by vCenter's CA, the certificate naming {VIP}, from a control-plane "
                            f"server")
    [name] = [n for n in SERVERS if f"answered by {n} ({SERVERS[n]})" in tls.found]
    assert tls.found.endswith("certificate issued by 127.0.0.1")  # the vCenter simulator's CA names its host
    assert row(checks, "HAProxy runs frontend").found == "OPEN"
    assert [c.found.split(" (")[0] for c in checks if c.check.startswith("HAProxy server")] == ["up"] * 6
    assert [c.check for c in checks if c.check.startswith("HAProxy server")] == SERVER_ROWS  # a backend per port
    assert row(checks, "TLS to the Supervisor's login").found.startswith("TLSv1.3 handshake, answered by "
                                                                         "supervisor-cp-")


@pytest.mark.slow
@pytest.mark.vcsim
def test_a_control_plane_server_down_shows_in_its_row(running):
    control_plane = running.vcsim.control_plane(running.cluster)
    cp2 = [SERVER_ROWS[1], SERVER_ROWS[4]]  # its rows in both backends
    control_plane.stop_server("supervisor-cp-2")
    try:
        checks_when(running, lambda checks: all(row(checks, r).found.startswith("down") for r in cp2),
                    "cp-2 down in both backends")  # HAProxy takes a server down after its third failed check
        # Read again: whether HAProxy has marked cp-2 down yet or not, a handshake with the virtual IP that meets it
        # is tried again, so only cp-2's own rows fail.
        checks = running.checks()
        assert [c.check for c in checks if c.status != "ok"] == cp2, checks_table(checks).to_text()
        assert row(checks, cp2[0]).found.startswith("down (L4CON")  # HAProxy's own check: connection refused
        assert "the control-plane VM supervisor-cp-2 or its API server is down" in row(checks, cp2[0]).fix
        assert "answered by supervisor-cp-2" not in row(checks, "TLS to the Supervisor's API").found
        assert running.info().config_status == "RUNNING"  # the load balancer is right: the controller changes nothing
    finally:
        control_plane.start_server("supervisor-cp-2")
    checks_when(running, lambda checks: not any(row(checks, r).failed for r in cp2), "cp-2 up again")


@pytest.mark.slow
@pytest.mark.vcsim
def test_a_broken_return_route_means_the_handshake_never_completes(running):
    # Replies from a virtual IP take rtctl_frontend (table 3): first boot's rule is `from 10.64.0.10/23`, which
    # the kernel holds as the whole frontend network, anyip's addresses included. A blackhole there for the
    # lab's address drops the appliance's SYN-ACK, as a return route gone astray does in the field.
    client = "10.64.0.1"  # the lab's address on the frontend network: where the handshake comes from
    route = ["blackhole", f"{client}/32", "table", "3"]
    running.sim.appliance_run(["ip", "route", "add", *route], check=True)
    try:
        # The one timeout also bounds the SSH reads beside the handshake: 3 s leaves a loaded host room.
        tls = row(running.checks(timeout=3), "TLS to the Supervisor's API")
    finally:
        running.sim.appliance_run(["ip", "route", "del", *route], check=True)
    assert (tls.status, tls.found) == ("failed", "connect timeout: no answer to the connection within 3 s")
    assert "a return route is missing" in tls.fix
    assert row(running.checks(), "TLS to the Supervisor's API").status == "ok"


@pytest.mark.slow
@pytest.mark.vcsim
def test_a_range_missing_from_anyip_routes_is_found_and_repaired(vcsim, tmp_path, caplog):
    """The field's fault: the appliance's anyip-routes.cfg lacks the range Workload Management uses
    while its VM's properties still name the site's range, so vCenter's checks pass and only HAProxy,
    binding the virtual IP, finds it."""
    caplog.set_level(logging.DEBUG)
    from tkgs_lib.appliance.checks import gather_appliance_facts
    from tkgs_lib.appliance.facts import ANYIP_FILE
    from tkgs_lib.appliance.releases import choose_release
    from tkgs_lib.appliance.repair import RepairOps, plan_repair
    from tkgs_lib.appliance.ssh import SshRunner
    from tkgs_lib.site.layout import network_layout

    supervised = supervise(vcsim, tmp_path, faults={"service_ip_range": "10.64.1.128/25"})
    try:
        assert supervised.sim.properties["loadbalance.service_ip_range"] == "10.64.1.0/24"
        info = statuses_until(supervised, lambda i: any("cannot bind socket" in m for m in messages_of(i)),
                              "HAProxy's refusal in the Supervisor's messages")
        assert info.config_status == "CONFIGURING" and info.api_server_cluster_endpoint == ""
        [message] = messages_of(info)
        assert message.startswith(f"WARNING: Load balancer 'haproxy-lb': the Kubernetes API's virtual IP {VIP} is not "
                                  f"served by the HAProxy Data Plane API at 10.64.2.10:5556 yet: ")
        assert f"cannot bind socket (Cannot assign requested address) for [{VIP}:6443]" in message  # HAProxy's words

        facts = supervised.facts()
        checks = supervisor_checks(facts, SITE_RANGES)
        vips = row(checks, "virtual IP range")
        assert (vips.check, vips.status) == (f"virtual IP range {VIP} + 256 (10.64.1.0-10.64.1.255)", "failed")
        assert vips.found == "10.64.1.0/25 not in /etc/vmware/anyip-routes.cfg (it holds 10.64.1.128/25)"
        assert vips.fix == ("10.64.1.0/25 is in the site's haproxy.load_balancer_ranges but not in the appliance's "
                            "/etc/vmware/anyip-routes.cfg, so HAProxy cannot bind those virtual IPs ('cannot bind "
                            "socket'): run the repair stage, which rewrites /etc/vmware/anyip-routes.cfg from "
                            "haproxy.load_balancer_ranges.")
        assert row(checks, "Supervisor of").found.startswith("CONFIGURING: WARNING: Load balancer 'haproxy-lb'")
        assert row(checks, "HAProxy runs frontend").status == "failed"
        assert row(checks, "TLS to the Supervisor's API").status == "not checked"
        assert supervised.info().config_status == "CONFIGURING"  # the controller keeps retrying; never ERROR
        assert "ERROR" not in supervised.seen

        # The repair stage's planner and operations, over SSH from the lab.
        network, release = network_layout(supervised.lab.site), choose_release("v0.1.10", "the test's appliance")

        def repair():
            with SshRunner(supervised.sim.management_address, password=ROOT_PASSWORD,
                           known_hosts=str(supervised.lab.site_file.parent / "known_hosts")) as runner:
                ops = RepairOps(runner, network, release)
                plan = plan_repair(network, gather_appliance_facts(runner, network, release), ops, release)
                for step in plan.changes:
                    step.run()
                return plan, runner.run(f"cat {ANYIP_FILE}").stdout
        plan, anyip = supervised.sim.in_lab(repair)
        [change] = plan.changes
        assert change.object == f"{ANYIP_FILE} (and anyip-routes.service)"
        assert anyip.endswith("\n10.64.1.0/24\n")

        # The controller binds at its next pass: RUNNING, the virtual IP its endpoint, every row ok.
        info = statuses_until(supervised, lambda i: i.config_status == "RUNNING", "RUNNING after the repair")
        assert info.api_server_cluster_endpoint == VIP and messages_of(info) == []
        checks = checks_when(supervised, lambda checks: {c.status for c in checks} == {"ok"},
                             "every row ok after the repair", timeout=15)
        assert row(checks, "virtual IP range").found == ("inside 10.64.1.0/24, a line of /etc/vmware/anyip-routes.cfg; "
                                                         "local routes present")
        assert row(checks, "TLS to the Supervisor's API").found.startswith("TLSv1.3 handshake, answered by "
                                                                           "supervisor-cp-")
    finally:
        end(supervised)
    # No secret in what a person reads or what was logged (the stand-in's thread and the controller's too).
    for text in (repr(facts), checks_table(checks).to_text(), message, caplog.text):
        assert DATAPLANE_PASSWORD not in text and ROOT_PASSWORD not in text
        assert "PRIVATE KEY" not in text  # vCenter's CA key, which issues the control plane's certificates
