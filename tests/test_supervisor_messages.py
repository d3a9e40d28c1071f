"""What a person checks for the Supervisor's messages, as vCenter reports them: each message decoded by
VMware's own bindings from the shape vCenter's /api gives it ({severity, details{id, default_message, args}}),
its details in the words of the Go services that wrote them. Pure: no vCenter, no appliance."""

from __future__ import annotations

import pytest
from com.vmware.vcenter.namespace_management_client import Clusters
from vmware.vapi.bindings.type import ListType

from tkgs_lib.stages.enable import CA_HINT, GENERIC_HINT, PASSWORD_HINT, RANGES_HINT, hints, what_to_check
from tkgs_lib.vsphere.namespace_management import NamespaceManagement

DATAPLANE = ("10.64.2.10", 5556)  # the site's haproxy.management_ip and dataplane_port
URL = "https://10.64.2.10:5556/v2/info"

# `GET /api/vcenter/namespace-management/clusters/domain-c8` of a vSphere 7.0 U1 Supervisor with the HAProxy load
# balancer, in ERROR (public lab notes, 2020-11; repository not identified): two of its messages, as vCenter gave them.
REAL_KUBERNETES_STATUS_MESSAGE = {
    "severity": "WARNING",
    "details": {"args": ["192.168.0.175", "Get https://192.168.0.175:6443/healthz?timeout=5s: dial tcp "
                                          "192.168.0.175:6443: connect: no route to host"],
                "default_message": "Kubernetes cluster health endpoint problem at 192.168.0.175. Details: Get "
                                   "https://192.168.0.175:6443/healthz?timeout=5s: dial tcp 192.168.0.175:6443: "
                                   "connect: no route to host",
                "localized": "Kubernetes cluster health endpoint problem at 192.168.0.175. Details: Get "
                             "https://192.168.0.175:6443/healthz?timeout=5s: dial tcp 192.168.0.175:6443: connect: "
                             "no route to host",
                "id": "vcenter.wcp.cluster.k8s.health.endpoint.problem"}}
REAL_MESSAGE = {
    "severity": "WARNING",
    "details": {"args": ["WARNING"],
                "default_message": "Error configuring cluster NIC on master VM. This operation is part of API server "
                                   "configuration and will be retried.",
                "id": "vcenter.wcp.cluster.nic.config.error"}}


def decoded(*messages: dict) -> list[Clusters.Message]:
    """Messages as the product reads an Info's: VMware's runtime decoding vCenter's JSON."""
    return NamespaceManagement._read("GET", "/api/vcenter/namespace-management/clusters/domain-c8", list(messages),
                                     ListType(Clusters.Message.get_binding_type()), "Clusters.Message values")


def message(details: str, message_id: str = "vcenter.wcp.lb.example", severity: str = "ERROR") -> dict:
    """A message shaped as vCenter's: a sentence ending in ``Details: <Go's words>``, the arguments beside it."""
    return {"severity": severity, "details": {"id": message_id, "args": ["haproxy-lb", details],
                                              "default_message": f"Load balancer haproxy-lb: configuration failed. "
                                                                 f"Details: {details}"}}


def test_a_health_endpoint_without_a_route_is_the_management_network_not_the_data_plane_api():
    said = what_to_check(decoded(REAL_KUBERNETES_STATUS_MESSAGE), DATAPLANE)
    assert said == ("Check that vCenter reaches the Supervisor's API at 192.168.0.175:6443 on the management network "
                    "(no route to it): the management port group (networks.management.portgroup) with its VLAN and "
                    "gateway, and that the 5 addresses from workload_management.supervisor_start are free (nothing "
                    "else answers for them).")


def test_the_cluster_nic_error_points_at_the_primary_workload_network():
    said = what_to_check(decoded(REAL_MESSAGE), DATAPLANE)
    assert said.startswith("Check the primary workload network the control-plane VMs join "
                           "(networks.workload.portgroup on every host's distributed switch")


# Go's words (go1.19 src/crypto/x509/verify.go, src/net/net.go, the system's errno text after "connect:").
@pytest.mark.parametrize("details, hint", [
    (f'Get "{URL}": x509: certificate signed by unknown authority', CA_HINT),
    (f'Get "{URL}": tls: failed to verify certificate: x509: certificate signed by unknown authority', CA_HINT),
    (f'Get "{URL}": x509: certificate is valid for 10.64.2.11, 127.0.0.1, not 10.64.2.10',
     "the Data Plane API's address: its certificate does not name 10.64.2.10"),
    (f'Get "{URL}": x509: cannot validate certificate for 10.64.2.10 because it doesn\'t contain any IP SANs',
     "the Data Plane API's address: its certificate does not name 10.64.2.10"),
    (f'Get "{URL}": x509: certificate has expired or is not yet valid: current time 2026-12-08T10:00:00Z is before '
     f'2026-12-09T08:00:00Z', "the clocks: the Data Plane API's certificate is not valid at vCenter's time"),
    (f'Get "{URL}": dial tcp 10.64.2.10:5556: i/o timeout',
     "the route from the Supervisor's management network (and vCenter) to the Data Plane API at 10.64.2.10:5556 "
     "(nothing answered in time)"),
    (f'Get "{URL}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)',
     "that vCenter reaches the Data Plane API at the management address and port"),
    (f'Get "{URL}": dial tcp 10.64.2.10:5556: connect: no route to host',
     "the route from the Supervisor's management network (and vCenter) to the Data Plane API at 10.64.2.10:5556 "
     "(no route to it)"),
    (f'Get "{URL}": dial tcp 10.64.2.10:5556: connect: connection refused',
     "the Data Plane API at 10.64.2.10:5556, which refused the connection: dataplaneapi is not running"),
    (f"GET {URL}: HTTP 401 Unauthorized: invalid username or password (user admin)", PASSWORD_HINT),
    ("Reload failed: [ALERT] (1) : Starting frontend supervisor-control-plane: cannot bind socket (Cannot assign "
     "requested address) for [10.64.1.0:6443]", RANGES_HINT),
    ("dial tcp 10.64.8.50:6443: connect: connection refused",
     "that the Supervisor's control plane reaches 10.64.8.50:6443 (the connection was refused)"),
])
def test_each_form_vcenter_reports_gets_its_hint(details, hint):
    [said] = hints(decoded(message(details)), DATAPLANE)
    assert said.startswith(hint), said


def test_hints_come_once_each_in_the_order_of_the_messages_and_a_message_of_no_known_form_gets_the_general_one():
    twice = decoded(message(f'Get "{URL}": x509: certificate signed by unknown authority'), REAL_MESSAGE,
                    message(f'Get "{URL}": x509: certificate signed by unknown authority', severity="WARNING"))
    said = what_to_check(twice, DATAPLANE)
    assert said.startswith(f"Check {CA_HINT}; the primary workload network") and said.count(CA_HINT) == 1
    assert what_to_check(decoded(message("Insufficient resources to deploy the control plane VMs.")), DATAPLANE) == \
        f"Check {GENERIC_HINT}."
    assert what_to_check([], DATAPLANE) == f"Check {GENERIC_HINT}."
    assert what_to_check(["Load balancer 'x': x509: certificate signed by unknown authority"]) == f"Check {CA_HINT}."
