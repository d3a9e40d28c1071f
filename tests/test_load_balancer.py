"""The load balancer balances: the simulated appliance's real HAProxy, programmed through the Data
Plane API stand-in as a load-balancer controller programs it, carries the Supervisor's virtual IP
to its three control-plane servers, TLS end to end; a virtual IP binds only through an anyip
route; a server that goes down shows in the runtime status; HAProxy's own check refuses a broken
configuration.

One appliance and control plane serve the module (a boot costs seconds); each test leaves the
load balancer as it found it. Facts encoded here come from haproxytech/vmware-haproxy at v0.1.10
and haproxytech/dataplaneapi (client-native) at v2.1.0, cited where used.
"""

from __future__ import annotations

import hashlib
import ipaddress
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from appliance_fixtures import DATAPLANE_PASSWORD, HEALTH_CHECK_MS, ROOT_PASSWORD, start_appliance
from tkgs_lib.appliance.dataplane import verified_session
from tkgs_lib.appliance.repair import FLUSH_ANYIP_ROUTES
from tkgs_lib.appliance.ssh import SshRunner
from tkgs_lib.https import basic_auth
from tkgs_lib.errors import ApplianceError

pytestmark = pytest.mark.slow

VIP = "10.64.1.10"  # in the example site's load-balancer range 10.64.1.0/24
OUTSIDE_ANYIP = "10.64.0.200"  # on the frontend network, in no anyip range
STAND_IN_HEADER = "tkgs-runbook appliance simulator (Data Plane API stand-in)"
HOST_HAPROXY_CFG = Path("/etc/haproxy/haproxy.cfg")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@dataclass
class Balanced:
    """The appliance (``lab``), the control plane, the Data Plane API's address, and the CA that issues the
    control plane's certificates (playing vCenter's VMCA): its file, and its certificate and key."""

    lab: object
    control_plane: object
    url: str
    ca_file: Path
    ca: tuple[str, str]

    @property
    def sim(self):
        return self.lab.sim


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    from tkgs_simulators.appliance.dataplane_server import make_ca
    from tkgs_simulators.supervisor import SupervisorControlPlane

    host_cfg = _digest(HOST_HAPROXY_CFG)
    folder = tmp_path_factory.mktemp("load-balancer")
    lab = start_appliance(folder)
    workload = lab.site.networks.workload
    first = ipaddress.ip_address(workload.ranges[0].split("-")[0])  # of the primary workload range
    ca = make_ca("vcenter.test.corp", organization="VMCA (simulated)")
    (folder / "vcenter-ca.pem").write_text(ca[0])
    control_plane = SupervisorControlPlane(lab.sim.lab, workload.cidr, workload.gateway,
                                           [str(first + i) for i in range(3)], vip=VIP, ca_pem=ca[0], ca_key_pem=ca[1])
    balanced = Balanced(lab, control_plane, f"https://{lab.sim.management_address}:5556", folder / "vcenter-ca.pem",
                        ca)
    try:
        control_plane.start()
        programmed(balanced, control_plane.servers)
        yield balanced
    finally:
        control_plane.stop()
        lab.sim.stop()
    assert _digest(HOST_HAPROXY_CFG) == host_cfg, "the host's own /etc/haproxy/haproxy.cfg changed"


def on_appliance(lb, *commands: str) -> list:
    """Commands over SSH as root (host key checked), from the lab."""
    def work():
        with SshRunner(lb.sim.management_address, password=ROOT_PASSWORD,
                       known_hosts=str(lb.lab.site_file.parent / "known_hosts")) as session:
            return [session.run(command) for command in commands]
    return lb.sim.in_lab(work)


def api(lab, method: str, path: str, *, password: str = DATAPLANE_PASSWORD, **kwargs) -> requests.Response:
    """One call to the Data Plane API from the lab, TLS verified against the appliance's CA."""
    def work():
        with verified_session(lab.sim.ca_pem, "the appliance's CA") as session:
            return session.request(method, f"{lab.url}/v2{path}", headers=basic_auth("admin", password), timeout=30,
                                   **kwargs)
    return lab.sim.in_lab(work)


def runtime_servers(lab, backend: str = "supervisor-control-plane-kube-apiserver") -> list[dict]:
    answer = api(lab, "GET", "/services/haproxy/runtime/servers", params={"backend": backend})
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


def in_appliance(lab, *argv: str) -> str:
    return lab.sim.appliance_run(list(argv), capture_output=True, text=True, check=True).stdout


def test_the_virtual_ip_answers_from_the_frontend_side_through_every_control_plane_server(lb):
    for port in (6443, 443):
        answers = [lb.control_plane.who_answers(VIP, port) for _ in range(6)]  # TLS verified, name = the VIP
        assert set(answers) == {"supervisor-cp-1", "supervisor-cp-2", "supervisor-cp-3"}, (port, answers)
        assert all(len(set(answers[i:i + 3])) == 3 for i in range(4)), answers  # round robin: each in turn
    listening = in_appliance(lb, "ss", "-Hltn")
    assert f"{VIP}:6443" in listening and f"{VIP}:443" in listening


def test_the_answer_is_the_control_planes_own_tls_so_another_ca_is_refused(lb):
    import socket
    import ssl

    appliance_ca = ssl.create_default_context(cadata=lb.sim.ca_pem)  # HAProxy passes TLS through in TCP mode

    def handshake():
        with socket.create_connection((VIP, 6443), timeout=5) as raw:
            appliance_ca.wrap_socket(raw, server_hostname=VIP)

    with pytest.raises(ssl.SSLCertVerificationError):
        lb.sim.in_lab(handshake)


def test_a_virtual_ip_binds_only_through_an_anyip_route(lb):
    from tkgs_simulators.supervisor import program_load_balancer, remove_load_balancer

    # The appliance never sets ip_nonlocal_bind (v0.1.10 ansible/roles/common/tasks/main.yml), and the
    # load-balancer range is a local route made by anyip-routes.service (anyiproutectl.sh up at v0.1.10).
    assert in_appliance(lb, "sysctl", "-n", "net.ipv4.ip_nonlocal_bind").strip() == "0"
    assert "local 10.64.1.0/24 dev lo scope host" in in_appliance(lb, "ip", "route", "show", "table", "local")

    def program(vip):
        return lb.sim.in_lab(lambda: program_load_balancer(lb.url, "admin", DATAPLANE_PASSWORD, lb.sim.ca_pem, vip,
                                                           lb.control_plane.servers, name="outside-anyip"))

    try:
        with pytest.raises(ApplianceError) as refused:
            program(OUTSIDE_ANYIP)
        said = str(refused.value)
        assert f"cannot bind socket (Cannot assign requested address) for [{OUTSIDE_ANYIP}:6443]" in said  # HAProxy's
        assert said.startswith(f"the Data Plane API at {lb.url} refused to commit the load balancer for "
                               f"{OUTSIDE_ANYIP} (HTTP 400): Reload failed: ") and "\n" not in said
        assert said.endswith(f"is {OUTSIDE_ANYIP} inside a range of the appliance's /etc/vmware/anyip-routes.cfg?")
        assert lb.control_plane.who_answers(VIP).startswith("supervisor-cp-")  # the previous configuration serves on

        # The fix: the address in anyip-routes.cfg (stop the unit, change the file, start it), its local routes
        # removed between, as the repair stage does: the unit's own down and up can misread a route that is there.
        [changed] = on_appliance(lb, f"systemctl stop anyip-routes.service && {FLUSH_ANYIP_ROUTES} && echo "
                                     f"{OUTSIDE_ANYIP}/32 >> /etc/vmware/anyip-routes.cfg && systemctl start "
                                     f"anyip-routes.service")
        assert changed.ok, changed
        program(OUTSIDE_ANYIP)
        assert lb.control_plane.who_answers(OUTSIDE_ANYIP, 443, name=VIP).startswith("supervisor-cp-")  # its cert's
    finally:
        lb.sim.in_lab(lambda: remove_load_balancer(lb.url, "admin", DATAPLANE_PASSWORD, lb.sim.ca_pem,
                                                   name="outside-anyip"))
        on_appliance(lb, f"systemctl stop anyip-routes.service && {FLUSH_ANYIP_ROUTES} && sed -i '/^{OUTSIDE_ANYIP}/d' "
                         f"/etc/vmware/anyip-routes.cfg && systemctl start anyip-routes.service")
    assert lb.control_plane.who_answers(VIP).startswith("supervisor-cp-")


def test_a_control_plane_server_down_shows_in_the_runtime_status(lb):
    lb.control_plane.stop_server("supervisor-cp-2")
    try:
        wait_for(lambda: {s["name"]: s["operational_state"] for s in runtime_servers(lb)}
                 == {"supervisor-cp-1": "up", "supervisor-cp-2": "down", "supervisor-cp-3": "up"}, "cp-2 down")
        stats = api(lb, "GET", "/services/haproxy/stats/native",
                    params={"type": "server", "name": "supervisor-cp-2",
                            "parent": "supervisor-control-plane-kube-apiserver"})
        assert stats.status_code == 200
        [collection] = stats.json()
        assert collection["runtimeAPI"] == "/run/haproxy.sock"  # the release's stats socket
        [server] = collection["stats"]
        assert server["stats"]["status"] == "DOWN" and "L4CON" in server["stats"]["check_status"]  # refused
        assert {lb.control_plane.who_answers(VIP) for _ in range(4)} == {"supervisor-cp-1", "supervisor-cp-3"}
    finally:
        lb.control_plane.start_server("supervisor-cp-2")
    wait_for(lambda: all(s["operational_state"] == "up" for s in runtime_servers(lb)), "cp-2 up again")


# --- the product's checks of the Supervisor through this load balancer ---------------------------------

def checked(lb, timeout: float = 5.0) -> dict:
    """The product's reads and checks (the enable stage's), for a Supervisor vCenter would report with this
    appliance's load balancer, its endpoint the virtual IP, its control plane the first three addresses of the
    site's primary workload range; from the lab, trusting the CA that plays vCenter's. Rows by name."""
    from tkgs_lib.appliance.supervisor_checks import (SupervisorView, VirtualIpRange, gather_supervisor_facts,
                                                      supervisor_checks)

    first, last = (ipaddress.ip_address(a) for a in lb.lab.site.networks.workload.ranges[0].split("-"))
    view = SupervisorView("domain-c8", "RUNNING", endpoint=VIP, load_balancer="haproxy",
                          virtual_ip_ranges=(VirtualIpRange("10.64.1.0", 256),),
                          dataplane_servers=((lb.sim.management_address, 5556),), dataplane_username="admin",
                          workload_ranges=(VirtualIpRange(str(first), int(last) - int(first) + 1),))

    def work():
        with SshRunner(lb.sim.management_address, password=ROOT_PASSWORD,
                       known_hosts=str(lb.lab.site_file.parent / "known_hosts")) as runner:
            facts = gather_supervisor_facts(view, ca_file=lb.ca_file, runner=runner,
                                            dataplane_password=DATAPLANE_PASSWORD, dataplane_ca_pem=lb.sim.ca_pem,
                                            ca_described="vCenter's CA", timeout=timeout)
        return {c.check: c for c in supervisor_checks(facts, ["10.64.1.0/24"])}
    return lb.sim.in_lab(work)


def not_ok(rows: dict) -> dict:
    return {name: c.status for name, c in rows.items() if c.status != "ok"}


def programmed(lb, servers, **options) -> None:
    """The appliance programmed for ``servers`` (as a controller would, or someone else), every server checked up."""
    from tkgs_simulators.supervisor import backend_names, program_load_balancer

    lb.sim.in_lab(lambda: program_load_balancer(lb.url, "admin", DATAPLANE_PASSWORD, lb.sim.ca_pem, VIP, servers,
                                                check_interval_ms=HEALTH_CHECK_MS, **options))
    backends = backend_names("supervisor-control-plane", options.get("ports", (6443, 443))).values()

    def checked_up() -> bool:  # HAProxy's check passed (a server is "up" before its first check)
        stats = api(lb, "GET", "/services/haproxy/stats/native", params={"type": "server"}).json()
        held = [row for collection in stats for row in collection["stats"] if row.get("backend_name") in backends]
        return len(held) == len(servers) * len(backends) and all(
            row["stats"].get("check_status", "").endswith("L4OK") for row in held)
    wait_for(checked_up, "every server's health check passed")


LOGIN, API = f"TLS to the Supervisor's login {VIP}:443", f"TLS to the Supervisor's API {VIP}:6443"


def test_the_supervisors_443_is_checked_through_the_appliance_as_its_6443_is(lb):
    """kubectl vsphere login starts at https://<VIP>/wcp/loginbanner: a virtual IP that answers 6443 but not 443
    is a known field fault (lamw/vsphere-with-tanzu-basic-automated-lab-deployment issue #6)."""
    rows = checked(lb)
    assert not_ok(rows) == {}, rows
    assert rows[LOGIN].found.startswith("TLSv1.3 handshake, answered by supervisor-cp-")
    try:
        programmed(lb, lb.control_plane.servers, ports=(6443,))  # a frontend that binds 6443 alone
        rows = checked(lb)
        assert not_ok(rows) == {LOGIN: "failed", f"HAProxy frontend for {VIP}": "failed"}, rows
        assert rows[LOGIN].found == "refused: the connection was refused"
        assert rows[LOGIN].fix.startswith(f"nothing listens on {VIP}:443: the Supervisor's frontend "
                                          f"supervisor-control-plane binds {VIP}:6443 but not {VIP}:443")
        programmed(lb, lb.control_plane.servers)
        for server in lb.control_plane.servers:  # the 443 backend broken: its servers down on 443, 6443 up
            lb.control_plane.stop_server(server.name, ports=(443,))
        wait_for(lambda: {s["operational_state"] for s in runtime_servers(lb, "supervisor-control-plane-nginx")}
                 == {"down"}, "the 443 backend's servers down")
        rows = checked(lb)
        nginx = [f"HAProxy server {s.name} of supervisor-control-plane-nginx ({s.address}:443)"
                 for s in lb.control_plane.servers]
        assert not_ok(rows) == {LOGIN: "failed", **{name: "failed" for name in nginx}}, rows
        assert rows[LOGIN].found.startswith("closed: ") and rows[LOGIN].found.endswith("(3 tries)")
        assert rows[nginx[0]].found.startswith("down (L4CON")
        assert rows[API].status == "ok"
    finally:
        for server in lb.control_plane.servers:
            lb.control_plane.start_server(server.name)
        programmed(lb, lb.control_plane.servers)
    assert not_ok(checked(lb)) == {}


def test_servers_that_are_not_the_control_planes_fail_the_check_naming_each_whichever_answers(lb):
    """The two ways the one handshake with the virtual IP was fooled: a server with a foreign certificate among
    .50 and .51 (passed 3 runs in 4), and every server an impostor whose certificate vCenter's CA signed."""
    from tkgs_simulators.supervisor import ControlPlaneServer, SupervisorControlPlane

    workload = lb.lab.site.networks.workload
    foreign = SupervisorControlPlane(lb.sim.lab, workload.cidr, workload.gateway, ["10.64.8.60"], vip=VIP)
    impostors = SupervisorControlPlane(lb.sim.lab, workload.cidr, workload.gateway,
                                       ["10.64.8.99", "10.64.8.98", "10.64.8.97"], vip=VIP, ca_pem=lb.ca[0],
                                       ca_key_pem=lb.ca[1])
    cp1, cp2, _ = lb.control_plane.servers
    try:
        foreign.start()
        programmed(lb, [cp1, cp2, ControlPlaneServer("supervisor-cp-3", "10.64.8.60")])
        named = [f"HAProxy server supervisor-cp-3 of supervisor-control-plane-{role} (10.64.8.60:{port})"
                 for port, role in ((6443, "kube-apiserver"), (443, "nginx"))]
        for _ in range(4):  # whichever server the handshakes with the virtual IP meet
            rows = checked(lb)
            failed = {name: c for name, c in rows.items() if c.failed}
            assert set(named) <= set(failed) <= {*named, API, LOGIN}, rows
            assert failed[named[0]].fix.startswith("supervisor-cp-3 (10.64.8.60) is not a control-plane VM of the "
                                                   "Supervisor: vCenter gives its control plane 10.64.8.50, "
                                                   "10.64.8.51, 10.64.8.52")
            assert "untrusted" in failed[named[0]].found  # and its certificate is not vCenter's CA's
        impostors.start()
        programmed(lb, impostors.servers)
        rows = checked(lb)
        servers = [f"HAProxy server {s.name} of supervisor-control-plane-{role} ({s.address}:{port})"
                   for port, role in ((6443, "kube-apiserver"), (443, "nginx")) for s in impostors.servers]
        assert {name for name, c in rows.items() if c.failed} == {API, LOGIN, *servers}, rows
        assert rows[API].found.startswith("TLSv1.3 handshake, answered by supervisor-cp-")  # vCenter's CA signed it
        assert "none an address vCenter gives the Supervisor's control plane" in rows[API].fix
        assert rows[servers[0]].fix.startswith("supervisor-cp-1 (10.64.8.99) is not a control-plane VM of the "
                                               "Supervisor")
    finally:
        programmed(lb, lb.control_plane.servers)
        foreign.stop()
        impostors.stop()
    assert not_ok(checked(lb)) == {}


def test_haproxy_refuses_a_broken_configuration_in_its_own_words(lb):
    version = api(lb, "GET", "/services/haproxy/configuration/frontends").json()["_version"]
    transaction = api(lb, "POST", "/services/haproxy/transactions", params={"version": version}).json()["id"]
    added = api(lb, "POST", "/services/haproxy/configuration/frontends", params={"transaction_id": transaction},
                json={"name": "broken", "mode": "tcp", "default_backend": "no-such-backend"})
    assert added.status_code == 202  # in a transaction, 2.1.0 answers 202 (handlers/frontend.go)
    commit = api(lb, "PUT", f"/services/haproxy/transactions/{transaction}", params={"force_reload": "true"})
    assert commit.status_code == 400
    assert commit.json()["message"] == (f"14: ERR transactionId={transaction} \n"  # client-native v2.1.0's wording
                                        "msg=\"Proxy 'broken': unable to find required default_backend: "
                                        "'no-such-backend'.\"")
    failed = api(lb, "GET", "/services/haproxy/transactions", params={"status": "failed"}).json()
    assert {"_version": version, "id": transaction, "status": "failed"} in failed
    assert api(lb, "GET", "/services/haproxy/configuration/frontends").json()["_version"] == version  # unchanged
    assert lb.control_plane.who_answers(VIP).startswith("supervisor-cp-")


def test_the_api_keeps_data_plane_api_2_1_0s_protocol(lb):
    frontends = api(lb, "GET", "/services/haproxy/configuration/frontends")
    version = frontends.json()["_version"]
    assert frontends.headers["Configuration-Version"] == str(version)
    assert frontends.headers["X-Simulated-By"] == STAND_IN_HEADER
    missing = api(lb, "GET", "/services/haproxy/configuration/version")  # came with 2.2.0
    assert missing.status_code == 404 and missing.headers["X-Simulated-By"] == STAND_IN_HEADER
    stale = api(lb, "POST", "/services/haproxy/transactions", params={"version": version - 1})
    assert (stale.status_code, stale.json()["message"]) == (
        409, f"15: Version in configuration file is {version}, given version is {version - 1}")
    assert api(lb, "POST", "/services/haproxy/transactions").status_code == 422  # version is required
    opened = api(lb, "POST", "/services/haproxy/transactions", params={"version": version}).json()
    assert api(lb, "DELETE", f"/services/haproxy/transactions/{opened['id']}").status_code == 204
    gone = api(lb, "GET", f"/services/haproxy/transactions/{opened['id']}")
    assert (gone.status_code, gone.json()["message"]) == (400, f"20: Transaction {opened['id']} does not exist")
    bad = api(lb, "POST", "/services/haproxy/configuration/binds",
              params={"frontend": "supervisor-control-plane", "version": version},
              json={"name": "too-far", "address": VIP, "port": 70000})
    assert (bad.status_code, bad.json()) == (422, {"code": 607, "message": "port in body should be less than or "
                                                                          "equal to 65535"})
    binds = api(lb, "GET", "/services/haproxy/configuration/binds", params={"frontend": "supervisor-control-plane"})
    assert sorted(b["port"] for b in binds.json()["data"]) == [443, 6443]
    # As a real Supervisor's controller writes it: a backend per port, picked by the port asked for.
    rules = api(lb, "GET", "/services/haproxy/configuration/backend_switching_rules",
                params={"frontend": "supervisor-control-plane"}).json()["data"]
    assert rules == [{"index": 0, "name": "supervisor-control-plane-kube-apiserver", "cond": "if",
                      "cond_test": "{ dst_port 6443 }"},
                     {"index": 1, "name": "supervisor-control-plane-nginx", "cond": "if",
                      "cond_test": "{ dst_port 443 }"}]
    beyond = api(lb, "GET", "/services/haproxy/configuration/backend_switching_rules/2",
                 params={"frontend": "supervisor-control-plane"})
    assert (beyond.status_code, beyond.json()["message"]) == (
        400, "32: Object with id 2 in frontend supervisor-control-plane out of range")  # client-native's handleError
    assert api(lb, "GET", "/info", password="not-the-password").status_code == 401


def test_haproxy_runs_the_releases_configuration_in_the_guests_own_etc(lb):
    cfg, checked, processes = on_appliance(lb, "cat /etc/haproxy/haproxy.cfg", "haproxy -c -f /etc/haproxy/haproxy.cfg",
                                           "ps -o user=,args= -C haproxy")
    assert checked.ok, checked
    lines = [line.strip() for line in cfg.stdout.splitlines()]
    assert lines[0].startswith("# _version=")  # where client-native v2.1.0 keeps the version
    for directive in ("master-worker", "maxconn 60000", "mworker-max-reloads 100", "chroot /var/lib/haproxy",
                      "stats socket /run/haproxy.sock user haproxy group haproxy mode 660 level admin expose-fd "
                      "listeners", "log stdout format raw local0 info", "timeout client-fin 10s"):
        assert directive in lines, directive  # v0.1.10 haproxy.cfg, log level as its tasks/main.yml sets it
    for port, role in ((6443, "kube-apiserver"), (443, "nginx")):  # the real Supervisor's layout
        assert f"use_backend supervisor-control-plane-{role} if {{ dst_port {port} }}" in lines
        assert f"server supervisor-cp-1 10.64.8.50:{port} check inter {HEALTH_CHECK_MS}" in lines
    [user] = [line for line in lines if line.startswith("user admin password ")]
    hashed = user.split()[-1]
    assert hashed.startswith("$1$")  # openssl passwd -1, as setHAProxyUserPass at v0.1.10 writes it
    again = subprocess.run(["openssl", "passwd", "-1", "-salt", hashed.split("$")[2], "-stdin"],
                           input=DATAPLANE_PASSWORD + "\n", capture_output=True, text=True, check=True).stdout.strip()
    assert again == hashed
    assert DATAPLANE_PASSWORD not in cfg.stdout
    assert not HOST_HAPROXY_CFG.exists() or "userlist controller" not in HOST_HAPROXY_CFG.read_text()  # host's own
    users = {line.split()[0] for line in processes.stdout.splitlines()}
    assert users == {"root", "haproxy"}, processes.stdout  # the master as root, its workers as haproxy
    assert all("-f /etc/haproxy/haproxy.cfg" in line for line in processes.stdout.splitlines())


def _answer(status: int, body: bytes, reason: str = "Bad Request") -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.reason = status, body, reason
    return response


def test_what_a_refusing_answer_says_is_its_message_else_its_text_else_its_reason():
    from tkgs_lib.appliance.dataplane import message_of

    assert message_of(_answer(400, b'{"code": 400, "message": "[ALERT] cannot bind\\nsocket"}')) == \
        "[ALERT] cannot bind socket"
    assert message_of(_answer(500, b"<html>proxy error</html>")) == "<html>proxy error</html>"
    assert message_of(_answer(500, b'["not", "an", "object"]', "Internal Server Error")) == "Internal Server Error"
    assert message_of(_answer(404, b'{"code": 404}', "Not Found")) == "Not Found"
