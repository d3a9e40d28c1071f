"""Workload Management through vCenter's /api: the product's client against the simulator's
namespace-management stand-in, which reaches real HAProxy Data Plane API stand-ins over verified
TLS as a Supervisor would, and fails the way a real enable fails."""

from __future__ import annotations

import json
import re
import logging
import socket
import ssl
import time

import pytest
import requests
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tkgs_lib.errors import RestError, SupervisorFailed
from tkgs_simulators.appliance.dataplane_server import make_ca, serve
from tkgs_simulators.appliance.haproxy_config import md5_crypt
from tkgs_lib.vsphere.namespace_management import (AddressRange, HaproxyLoadBalancer, ManagementNetwork,
                                                   NamespaceManagement, WorkloadNetwork, build_enable_spec,
                                                   enable_body, messages_of)
from tkgs_lib.vsphere.rest import RestClient
from tkgs_lib.vsphere.tls import TlsPolicy

pytestmark = pytest.mark.vcsim

STAND_IN = "tkgs-runbook vCenter simulator (namespace-management stand-in)"
DATAPLANE_USER, DATAPLANE_PASSWORD = "admin", "canary-dataplane-pw-3f9"
SERVED = "10.64.1.0/24"  # the appliance's loadbalance.service_ip_range (the article's)
CONFIG_SECONDS = 1.0  # CONFIGURING (and REMOVING) this long: wide enough for a loaded host's first read


@pytest.fixture(scope="module")
def misnamed():
    """Data Plane API stand-ins whose certificates will not do: one on 127.0.0.2 naming 127.0.0.1 (as every
    appliance's names it) but not 127.0.0.2, one expired; {kind: (CA PEM, host, port)}."""
    ca_pem, ca_key = make_ca("haproxy02.test.corp")
    servers = {"name": serve("127.0.0.2", 0, ca_pem=ca_pem, ca_key_pem=ca_key, hostname="haproxy02.test.corp",
                             addresses=[], users={DATAPLANE_USER: md5_crypt(DATAPLANE_PASSWORD)}),
               "expired": serve("127.0.0.1", 0, ca_pem=ca_pem, ca_key_pem=ca_key, hostname="haproxy02.test.corp",
                                addresses=["127.0.0.1"], users={DATAPLANE_USER: md5_crypt(DATAPLANE_PASSWORD)},
                                fault="expired")}
    yield {kind: (ca_pem, *server.server_address[:2]) for kind, server in servers.items()}
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def dataplane():
    """A Data Plane API stand-in on 127.0.0.1, signed by its appliance's CA: (CA PEM, port)."""
    ca_pem, ca_key = make_ca("haproxy01.test.corp")
    server = serve("127.0.0.1", 0, ca_pem=ca_pem, ca_key_pem=ca_key, hostname="haproxy01.test.corp",
                   addresses=["127.0.0.1"], users={DATAPLANE_USER: md5_crypt(DATAPLANE_PASSWORD)})
    yield ca_pem, server.server_address[1]
    server.shutdown()
    server.server_close()


def _soap(sim):
    return SmartConnect(host=sim.host, port=sim.port, user=sim.username, pwd=sim.password,
                        sslContext=ssl.create_default_context(cafile=str(sim.ca_file)))


def deploy_appliance_vm(sim, management_ip: str, service_ip_range: str) -> str:
    """Give one of the simulator's VMs the property values an appliance deployed with them holds
    (the simulator keeps them in extraConfig); returns the cluster's managed object id."""
    si = _soap(sim)
    try:
        content = si.content
        views = {kind: content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
                 for kind in (vim.ClusterComputeResource, vim.VirtualMachine)}
        cluster = views[vim.ClusterComputeResource].view[0]._moId
        vm = views[vim.VirtualMachine].view[0]
        task = vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=[
            vim.option.OptionValue(key="network.management_ip", value=management_ip),
            vim.option.OptionValue(key="loadbalance.service_ip_range", value=service_ip_range)]))
        while task.info.state not in ("success", "error"):
            time.sleep(0.05)
        assert task.info.state == "success"
        return cluster
    finally:
        Disconnect(si)


@pytest.fixture
def lab(vcsim):
    """The simulator with short Supervisor times and an appliance VM at 127.0.0.1; (client, cluster)."""
    vcsim.supervisor.config_seconds, vcsim.supervisor.load_balancer_timeout = CONFIG_SECONDS, 2.0
    cluster = deploy_appliance_vm(vcsim, "127.0.0.1/8", SERVED)
    rest = RestClient(vcsim.host, vcsim.port, TlsPolicy(ca_file=str(vcsim.ca_file)))
    rest.login(vcsim.username, vcsim.password)
    yield NamespaceManagement(rest), cluster
    rest.logout()


def spec_for(ca_pem: str, port: int, *, host: str = "127.0.0.1", password: str = DATAPLANE_PASSWORD,
             vips=(AddressRange("10.64.1.0", 64), AddressRange("10.64.1.128", 32))):
    return build_enable_spec(
        size="tiny", service_cidr="10.96.0.0/23",
        management=ManagementNetwork("dvportgroup-21", "10.64.2.20", 5, "255.255.254.0", "10.64.2.1"),
        workload=WorkloadNetwork("primary-workload", "dvportgroup-22", (AddressRange("10.64.8.50", 100),),
                                 "10.64.8.1", "255.255.248.0"),
        load_balancer=HaproxyLoadBalancer("haproxy-lb", ((host, port),), DATAPLANE_USER, password, ca_pem, vips),
        storage_policy="aa6d5a82-1c88-45da-85d3-3d74b91a5bad", master_dns=["10.64.2.1"], worker_dns=["10.64.2.1"],
        ntp_servers=["10.64.2.1"], content_library="2c0f4c3c-7e61-4b2c-8d2b-2f8a7c8a1d11")


def statuses(client: NamespaceManagement, cluster: str, until: str, timeout: float = 10.0) -> list[str]:
    """The config_status values seen, in order, polling until ``until`` or the timeout."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(cluster).config_status
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == until:
            break
        time.sleep(0.05)
    return seen


def wait_until_removed(client: NamespaceManagement, cluster: str, timeout: float = 15.0) -> None:
    """Poll until vCenter says the cluster has no Supervisor (a disable done), whichever way it says it."""
    deadline = time.monotonic() + timeout
    while client.find(cluster) is not None:
        assert time.monotonic() < deadline, f"the Supervisor of {cluster} was not removed within {timeout:.0f} s"
        time.sleep(0.05)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a good enable -------------------------------------------------------------------------------

def test_enable_configures_then_runs_and_the_stand_in_saw_exactly_the_spec_sent(lab, vcsim, dataplane):
    client, cluster = lab
    ca_pem, port = dataplane
    spec = spec_for(ca_pem, port)
    client.enable(cluster, spec)
    assert statuses(client, cluster, until="RUNNING") == ["CONFIGURING", "RUNNING"]
    info = client.get(cluster)
    assert info.kubernetes_status == "READY" and messages_of(info) == []
    assert info.api_server_cluster_endpoint == "10.64.1.0"  # the first virtual IP
    assert info.api_server_management_endpoint == "10.64.2.20"
    assert info.master_dns == ["10.64.2.1"] and info.master_ntp_servers == ["10.64.2.1"]
    assert info.load_balancers[0].ha_proxy_info.servers[0].port == port
    assert info.workload_networks.supervisor_primary_workload_network.vsphere_network.portgroup == "dvportgroup-22"
    # What the stand-in accepted, field by field, is what the product built.
    [accepted] = vcsim.enable_requests
    assert accepted.cluster == cluster
    assert accepted.spec == spec
    assert json.loads(accepted.body) == json.loads(enable_body(spec))
    assert json.loads(accepted.body)["master_NTP_servers"] == ["10.64.2.1"]  # VMware's wire name
    [summary] = client.list()
    assert (summary.cluster, summary.config_status, summary.kubernetes_status) == (cluster, "RUNNING", "READY")
    assert client.wait_until_running(cluster, timeout=1, poll=0.05).config_status == "RUNNING"


@pytest.mark.parametrize("answer, status", [("NOT_FOUND", 404), ("UNSUPPORTED", 400)])
def test_disable_removes_the_supervisor_however_vcenter_says_there_is_none(lab, vcsim, dataplane, answer, status):
    """A read of a cluster without a Supervisor is answered NOT_FOUND (as 7.0 builds do) or UNSUPPORTED (as
    VMware's bindings document Clusters.get): the client reads either as none."""
    vcsim.supervisor.no_supervisor_error = answer
    client, cluster = lab
    with pytest.raises(RestError) as none:
        client.get(cluster)
    assert (none.value.status, none.value.error_type) == (status, answer) and "has no Supervisor" in str(none.value)
    assert client.find(cluster) is None
    client.enable(cluster, spec_for(*dataplane))
    client.wait_until_running(cluster, timeout=10, poll=0.05)
    assert client.find(cluster).config_status == "RUNNING"
    client.disable(cluster)
    assert client.get(cluster).config_status == "REMOVING"
    wait_until_removed(client, cluster)
    with pytest.raises(RestError) as gone:
        client.get(cluster)
    assert (gone.value.status, gone.value.error_type) == (status, answer)
    assert client.list() == []


# --- enables that fail as a real one fails ------------------------------------------------------

@pytest.mark.parametrize("broken, cause, hint", [
    ("ca", 'Get "https://{where}/v2/info": x509: certificate signed by unknown authority', "the CA chain"),
    ("password", "GET https://{where}/v2/info: HTTP 401 Unauthorized: invalid username or password (user admin)",
     "the Data Plane API user and password"),
    ("address", 'Get "https://{where}/v2/info": dial tcp {where}: connect: connection refused',
     "the Data Plane API at {where}, which refused the connection"),
    ("name", 'Get "https://{where}/v2/info": x509: certificate is valid for 127.0.0.1, not 127.0.0.2',
     "the Data Plane API's address: its certificate does not name 127.0.0.2"),
    ("expired", 'Get "https://{where}/v2/info": x509: certificate has expired or is not yet valid: current time ',
     "the clocks: the Data Plane API's certificate is not valid at vCenter's time"),
])
def test_a_load_balancer_that_cannot_be_used_ends_in_error_reading_as_vcenters(lab, vcsim, dataplane, misnamed, broken,
                                                                                cause, hint):
    """In vCenter's shape ({severity, details{id, default_message, args}}), the cause in the words of the Go client a
    Supervisor runs, so that the hints keyed to a real vCenter's messages read the stand-in's too."""
    from tkgs_lib.stages.enable import hints
    from tkgs_lib.vsphere.namespace_management import reported_messages

    client, cluster = lab
    ca_pem, port = dataplane
    spec = {"ca": lambda: spec_for(make_ca("another-appliance")[0], port),
            "password": lambda: spec_for(ca_pem, port, password="not-the-dataplane-password"),
            "address": lambda: spec_for(ca_pem, _closed_port()),
            "name": lambda: spec_for(misnamed["name"][0], misnamed["name"][2], host=misnamed["name"][1]),
            "expired": lambda: spec_for(misnamed["expired"][0], misnamed["expired"][2])}[broken]()
    client.enable(cluster, spec)
    assert statuses(client, cluster, until="ERROR")[-1] == "ERROR"
    time.sleep(CONFIG_SECONDS + 0.2)
    info = client.get(cluster)
    assert info.config_status == "ERROR" and info.kubernetes_status == "ERROR"  # it stays so
    server = spec.load_balancer_config_spec.ha_proxy_config_create_spec.servers[0]
    where = f"{server.host}:{server.port}"
    cause = cause.format(where=where)
    [message] = info.messages
    assert message.severity == "ERROR" and message.details.id == "tkgs.stand_in.wcp.loadbalancer.dataplane.unusable"
    said = message.details.default_message
    assert said.startswith(f"Load balancer 'haproxy-lb': cannot use the HAProxy Data Plane API at {where}. Details: "
                           f"{cause}"), said
    assert message.details.args == ["haproxy-lb", where, said.split(". Details: ", 1)[1]]
    [check] = hints(reported_messages(info), (server.host, server.port))
    assert check.startswith(hint.format(where=where)), check
    assert info.api_server_cluster_endpoint == ""


def test_a_virtual_ip_range_the_appliance_does_not_serve_is_an_error_naming_the_range(lab, dataplane):
    client, cluster = lab
    client.enable(cluster, spec_for(*dataplane, vips=(AddressRange("10.64.1.0", 64), AddressRange("10.64.0.200", 80))))
    assert statuses(client, cluster, until="ERROR")[-1] == "ERROR"
    [message] = messages_of(client.get(cluster))
    assert "the virtual IP range 10.64.0.200 + 80 (10.64.0.200-10.64.1.23) is not served by the HAProxy " \
           "appliance at 127.0.0.1" in message
    assert f"loadbalance.service_ip_range '{SERVED}'" in message


def test_an_injected_lasting_error_stays(lab, vcsim, dataplane):
    client, cluster = lab
    vcsim.inject_enable_error("The control plane VMs could not be deployed.")
    client.enable(cluster, spec_for(*dataplane))
    assert statuses(client, cluster, until="ERROR") == ["CONFIGURING", "ERROR"]
    time.sleep(CONFIG_SECONDS + 0.5)  # past when it would have turned RUNNING
    info = client.get(cluster)
    assert info.config_status == "ERROR"
    assert messages_of(info) == ["ERROR: The control plane VMs could not be deployed."]
    with pytest.raises(SupervisorFailed) as waited:
        client.wait_until_running(cluster, timeout=0.3, poll=0.1)
    said = re.fullmatch(rf"Workload Management on cluster {cluster} is still ERROR, Kubernetes ERROR after waiting "
                        r"([0-9.]+) s \(workload_management\.timeout is 0\.3\): vCenter says: ERROR: The control plane "
                        r"VMs could not be deployed\.", str(waited.value))
    assert said and 0.3 <= float(said.group(1)) < 10, str(waited.value)  # the real clock: matched for its bounds
    # With a grace shorter than the timeout, the lasting ERROR ends the wait first.
    with pytest.raises(SupervisorFailed, match=r"has been in ERROR for [0-9.]+ s, longer than the 0\.2 s an error "
                                               r"may last while vCenter retries \(workload_management\.error_grace\)"):
        client.wait_until_running(cluster, timeout=30, poll=0.05, error_grace=0.2)


def test_an_injected_transient_error_passes_and_the_supervisor_runs(lab, vcsim, dataplane):
    client, cluster = lab
    vcsim.inject_enable_error("Waiting for the control plane VMs.", recover_after=0.5)
    client.enable(cluster, spec_for(*dataplane))
    assert statuses(client, cluster, until="RUNNING") == ["CONFIGURING", "ERROR", "RUNNING"]
    assert messages_of(client.get(cluster)) == []


def test_an_injected_transient_error_unread_lasts_until_a_read_reports_it(lab, vcsim, dataplane):
    """The stand-in holds a transient ERROR until an Info has carried it, so a poller that a loaded
    host delays past its seconds still sees what the test injected."""
    client, cluster = lab
    vcsim.inject_enable_error("Waiting for the control plane VMs.", recover_after=0.2)
    client.enable(cluster, spec_for(*dataplane))
    time.sleep(CONFIG_SECONDS + 1.0)  # the ERROR's 0.2 s long past, and no Info read meanwhile
    assert client.get(cluster).config_status == "ERROR"
    assert statuses(client, cluster, until="RUNNING")[-1] == "RUNNING"  # then it recovers


def test_an_injected_stall_stays_configuring_past_a_wait_and_runs_once_released(lab, vcsim, dataplane):
    from tkgs_lib.errors import SupervisorStillConfiguring

    client, cluster = lab
    vcsim.inject_enable_stall()
    client.enable(cluster, spec_for(*dataplane))
    time.sleep(CONFIG_SECONDS + 0.5)  # past when it would have turned RUNNING
    assert client.get(cluster).config_status == "CONFIGURING"
    # The elapsed time is the real clock's, read after the last poll: on a loaded host it can be a
    # tenth or more past the timeout, so its figure is judged by bounds, beside the timeout named.
    with pytest.raises(SupervisorStillConfiguring) as waited:
        client.wait_until_running(cluster, timeout=0.2, poll=0.1)
    said = re.search(r"is still CONFIGURING, Kubernetes WARNING after waiting ([0-9.]+) s "
                     r"\(workload_management\.timeout is 0\.2\)", str(waited.value))
    assert said and 0.2 <= float(said.group(1)) < 10, str(waited.value)  # never given up before the timeout
    # vCenter went on meanwhile, as a real enable outlasts a wait: a later wait finds it running.
    vcsim.release_enable_stall(cluster)
    assert client.wait_until_running(cluster, timeout=15, poll=0.05).config_status == "RUNNING"
    assert len(vcsim.enable_requests) == 1


# --- requests vCenter refuses ----------------------------------------------------------------------

def test_an_unknown_cluster_is_not_found(lab, dataplane):
    client, cluster = lab
    path = "/api/vcenter/namespace-management/clusters/domain-c999"
    for method, call in (("POST", lambda: client.enable("domain-c999", spec_for(*dataplane))),
                         ("GET", lambda: client.get("domain-c999"))):
        with pytest.raises(RestError) as missing:
            call()
        assert missing.value.status == 404 and missing.value.error_type == "NOT_FOUND"
        assert str(missing.value) == (f"{method} {path} failed: HTTP 404 not found (Cluster domain-c999 does not "
                                      f"exist in this vCenter; its clusters, by managed object id: {cluster} "
                                      f"(DC0_C0).).")
    with pytest.raises(RestError, match="has no Supervisor"):
        client.get(cluster)


def test_without_a_session_the_answer_is_401_in_vcenters_api_shape(vcsim):
    http = requests.Session()
    http.trust_env = False
    base = f"https://{vcsim.host}:{vcsim.port}/api/vcenter/namespace-management/clusters"
    for headers in ({}, {"vmware-api-session-id": "not-a-session"}):
        answer = http.get(base, headers=headers, verify=str(vcsim.ca_file))
        assert answer.status_code == 401
        assert answer.headers["X-Simulated-By"] == STAND_IN
        assert answer.json() == {"error_type": "UNAUTHENTICATED", "messages": [{
            "id": "com.vmware.vapi.endpoint.method.authentication.required",
            "default_message": "Authentication required.", "args": []}]}


def test_a_broken_body_is_refused_with_every_problem_and_nothing_is_stored(lab, vcsim, dataplane):
    client, cluster = lab
    body = json.loads(enable_body(spec_for(*dataplane)))
    body["size_hint"] = "HUGE"
    del body["master_management_network"]["address_range"]["gateway"]
    with pytest.raises(RestError) as refused:
        client.rest.api_post(f"/api/vcenter/namespace-management/clusters/{cluster}", json.dumps(body), action="enable")
    assert refused.value.status == 400 and refused.value.error_type == "INVALID_ARGUMENT"
    sentence = str(refused.value)
    assert "size_hint: Expected enumeration" in sentence
    assert 'master_management_network.address_range.gateway: Structure' in sentence
    assert vcsim.enable_requests == []
    with pytest.raises(RestError, match="has no Supervisor"):
        client.get(cluster)
    body = json.loads(enable_body(spec_for(*dataplane)))
    body["master_management_network"]["address_range"]["address_count"] = 3
    with pytest.raises(RestError, match="needs 5 consecutive addresses"):
        client.rest.api_post(f"/api/vcenter/namespace-management/clusters/{cluster}", json.dumps(body), action="enable")
    assert vcsim.enable_requests == []


def test_every_answer_says_it_is_a_stand_in_and_other_operations_are_not_found(lab, vcsim):
    client, cluster = lab
    http = client.rest.session
    base = f"{client.rest.base_url}/api/vcenter/namespace-management"
    for method, path in (("GET", "/clusters"), ("GET", f"/clusters/{cluster}"), ("POST", "/clusters?action=create"),
                         ("GET", "/edge-cluster-compatibility")):
        answer = http.request(method, base + path, timeout=10)
        assert answer.headers.get("X-Simulated-By") == STAND_IN, (method, path)
    assert answer.status_code == 404 and answer.json()["error_type"] == "OPERATION_NOT_FOUND"


# --- the load balancer updated in place (vCenter 7.0 U3) -----------------------------------------------

def test_a_load_balancer_update_gives_the_supervisor_the_new_password_as_vmwares_types_decode_it(lab, vcsim, dataplane):
    from tkgs_lib.vsphere.namespace_management import load_balancer_update_body

    client, cluster = lab
    ca_pem, port = dataplane
    client.enable(cluster, spec_for(ca_pem, port))
    statuses(client, cluster, until="RUNNING")
    client.update_load_balancer(cluster, "haproxy-lb", load_balancer_update_body(password="canary-new-dataplane-9"))
    [update] = vcsim.load_balancer_updates
    assert (update.cluster, update.load_balancer) == (cluster, "haproxy-lb")
    held = vcsim._stand_in.supervisor(cluster).spec.load_balancer_config_spec.ha_proxy_config_create_spec
    assert held.password == "canary-new-dataplane-9" and held.username == DATAPLANE_USER  # None keeps the user
    assert held.certificate_authority_chain == ca_pem
    with pytest.raises(RestError) as unknown:  # decoded by VMware's types: an unknown field is refused
        client.update_load_balancer(cluster, "haproxy-lb", '{"provider": "HA_PROXY", "passwd": "x"}')
    assert unknown.value.status == 400 and unknown.value.error_type == "UNEXPECTED_INPUT"
    with pytest.raises(RestError) as other:
        client.update_load_balancer(cluster, "another-lb", load_balancer_update_body(password="canary-new-x"))
    assert other.value.status == 404
    vcsim.refuse_next_load_balancer_update("the update is refused for a test")
    with pytest.raises(RestError) as refused:
        client.update_load_balancer(cluster, "haproxy-lb", load_balancer_update_body(password="canary-new-y"))
    assert "refused for a test" in str(refused.value) and held.password == "canary-new-dataplane-9"
    assert len(vcsim.load_balancer_updates) == 1


def test_a_vcenter_before_7_0_u3_has_no_load_balancer_update(vcsim_binary, tmp_path):
    """The simulator playing vCenter 7.0 U2 (its about, API 7.0.2.0) has no PATCH of a load balancer: its
    path is an operation it does not know, as on such a vCenter."""
    from tkgs_lib.vsphere.namespace_management import load_balancer_update_body
    from tkgs_simulators.vcsim import VCenterSimulator

    with VCenterSimulator(binary=vcsim_binary, workdir=tmp_path / "vcsim", vcenter_version="7.0.2") as old:
        si = _soap(old)
        try:
            about = si.content.about
            assert (about.version, about.apiVersion) == ("7.0.2", "7.0.2.0")
        finally:
            Disconnect(si)
        rest = RestClient(old.host, old.port, TlsPolicy(ca_file=str(old.ca_file)))
        rest.login(old.username, old.password)
        try:
            cluster = deploy_appliance_vm(old, "127.0.0.1/8", SERVED)
            with pytest.raises(RestError) as missing:
                NamespaceManagement(rest).update_load_balancer(cluster, "haproxy-lb",
                                                               load_balancer_update_body(password="canary-x-123"))
        finally:
            rest.logout()
    assert missing.value.status == 404 and missing.value.error_type == "OPERATION_NOT_FOUND"


def test_with_the_stand_in_down_the_proxy_answers_503_in_vcenters_api_shape(lab, vcsim):
    client, cluster = lab
    vcsim._stand_in.stop()
    with pytest.raises(RestError) as down:
        client.list()
    assert down.value.status == 503 and down.value.error_type == "SERVICE_UNAVAILABLE"
    assert "stand-in of this simulator is not running" in str(down.value)


# --- secrets ---------------------------------------------------------------------------------------

def test_no_password_in_reprs_logs_or_errors(lab, vcsim, dataplane, caplog):
    client, cluster = lab
    ca_pem, port = dataplane
    texts = []
    with caplog.at_level(logging.DEBUG):
        spec = spec_for(ca_pem, port, password=DATAPLANE_PASSWORD)
        texts += [repr(spec), str(spec), f"{spec}", repr(spec.load_balancer_config_spec)]
        client.enable(cluster, spec)
        statuses(client, cluster, until="RUNNING")
        texts += [repr(vcsim.enable_requests), repr(vcsim.enable_requests[0].spec), str(vcsim.enable_requests[0].spec),
                  repr(client), repr(client.rest), repr(client.get(cluster))]
        client.disable(cluster)
        wait_until_removed(client, cluster)
        spec = spec_for(ca_pem, port, password="wrong-" + DATAPLANE_PASSWORD)
        client.enable(cluster, spec)
        statuses(client, cluster, until="ERROR")
        texts += messages_of(client.get(cluster))
        with pytest.raises(RestError) as again:
            client.enable(cluster, spec)
        texts.append(str(again.value))
    texts.append(caplog.text)
    assert "already has a Supervisor" in texts[-2]
    for text in texts:
        assert DATAPLANE_PASSWORD not in text, text
    assert DATAPLANE_PASSWORD in enable_body(spec)  # it is sent, all the same


# --- inside the appliance simulator's lab --------------------------------------------------------

def test_enable_against_the_simulated_appliance_in_its_lab(vcsim, tmp_path):
    from appliance_fixtures import DATAPLANE_PASSWORD as APPLIANCE_PASSWORD, start_appliance

    appliance = start_appliance(tmp_path).sim
    try:
        props = appliance.properties
        cluster = deploy_appliance_vm(vcsim, props["network.management_ip"], props["loadbalance.service_ip_range"])
        vcsim.supervisor.config_seconds, vcsim.supervisor.load_balancer_netns = CONFIG_SECONDS, appliance.lab
        rest = RestClient(vcsim.host, vcsim.port, TlsPolicy(ca_file=str(vcsim.ca_file)))
        rest.login(vcsim.username, vcsim.password)
        client = NamespaceManagement(rest)
        address, port = appliance.management_address, int(props["loadbalance.dataplane_port"])
        client.enable(cluster, spec_for(appliance.ca_pem, port, host=address, password=APPLIANCE_PASSWORD,
                                        vips=(AddressRange("10.64.1.0", 256),)))
        info = client.wait_until_running(cluster, timeout=15, poll=0.1)
        assert info.api_server_cluster_endpoint == "10.64.1.0"
        client.disable(cluster)
        wait_until_removed(client, cluster)  # its load balancer removed from the appliance first
        # The same appliance with a CA that is not its own: the Supervisor cannot trust it.
        client.enable(cluster, spec_for(make_ca("another-appliance")[0], port, host=address,
                                        password=APPLIANCE_PASSWORD, vips=(AddressRange("10.64.1.0", 256),)))
        assert statuses(client, cluster, until="ERROR")[-1] == "ERROR"
        [message] = messages_of(client.get(cluster))
        assert message.endswith(f"HAProxy Data Plane API at {address}:{port}. Details: Get "
                                f"\"https://{address}:{port}/v2/info\": x509: certificate signed by unknown authority")
        rest.logout()
    finally:
        appliance.stop()
