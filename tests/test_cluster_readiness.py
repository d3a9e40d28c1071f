"""Whether a cluster can take a Supervisor, as vCenter judges it: the product's reads against the simulator's
stand-in, which judges what the simulator holds (its cluster's DRS and HA, hosts, switch and licences), each
changed here through the simulator's own SOAP API as an administrator would change it."""

from __future__ import annotations

import time

import pytest
from pyVmomi import vim

from sim_site import site_for
from test_namespace_management import spec_for
from tkgs_lib.errors import RestError
from tkgs_lib.vsphere.cluster_readiness import (ClusterReadiness, fix_for, read_readiness, readiness_findings,
                                                readiness_rows)
from tkgs_lib.vsphere.connection import VCenterVersion, connect
from tkgs_lib.vsphere.inventory import Inventory
from tkgs_lib.vsphere.namespace_management import NamespaceManagement
from tkgs_simulators.appliance.dataplane_server import make_ca

pytestmark = pytest.mark.vcsim

EVALUATION = "00000-00000-00000-00000-00000"  # the simulator's evaluation licence, which it assigns every host
VCENTER = "vCenter 7.0.3 build 21477706 (API 7.0.3.0)"  # what the simulator's launcher makes it say


class Judged:
    """The product's read of the simulator's cluster DC0_C0 and switch DVS0, and its findings and rows."""

    def __init__(self, vcsim) -> None:
        site = site_for(vcsim)
        with connect(site.vcenter, password=vcsim.password) as session:
            inventory = Inventory(session, site.vcenter)
            self.cluster, self.switch = inventory.cluster._moId, inventory.switch._moId
            portgroup = {pg.name: pg._moId for pg in inventory.switch.portgroup}["DC0_DVPG0"]
            self.readiness = read_readiness(session, inventory.cluster, inventory.switch)
            self.reasons = [m.default_message for s in NamespaceManagement(session.rest).cluster_compatibility()
                            if s.cluster == self.cluster for m in s.incompatibility_reasons]
        self.findings = readiness_findings(self.readiness, cluster_name="DC0_C0",
                                           cluster_field="workload_management.cluster", switch_name="DVS0",
                                           portgroups={"networks.workload.portgroup": ("DC0_DVPG0", portgroup)})
        self.rows = {r["what"]: r for r in readiness_rows(self.readiness, cluster_name="DC0_C0", switch_name="DVS0")}

    @property
    def errors(self):
        return [f for f in self.findings if f.is_error]


def refused_enable(vcsim) -> RestError:
    """An enable sent anyway (by hand, past the product's reads): the stand-in's answer."""
    site = site_for(vcsim)
    with connect(site.vcenter, password=vcsim.password) as session:
        cluster = Inventory(session, site.vcenter).cluster._moId
        with pytest.raises(RestError) as refused:
            NamespaceManagement(session.rest).enable(cluster, spec_for(make_ca("haproxy")[0], 5556))
    assert vcsim.enable_requests == []
    return refused.value


def test_the_simulators_cluster_is_readied_as_an_administrator_readies_it_and_vcenter_says_it_can_take_one(vcsim):
    judged = Judged(vcsim)
    assert judged.findings == [] and judged.reasons == []
    assert judged.readiness.vcenter == VCenterVersion("7.0.3", "21477706", "7.0.3.0")
    assert judged.readiness.licensed is True and judged.readiness.compatibility.compatible
    assert judged.readiness.switch_summary.compatible
    assert [str(h) for h in judged.readiness.hosts] == [f"DC0_C0_H{i} ESXi 7.0.3 build 21930508" for i in range(3)]
    assert judged.rows["vCenter"]["found"] == VCENTER
    compatibility = judged.rows[f"cluster DC0_C0 ({judged.cluster}) for vSphere networking"]
    assert compatibility["found"] == "compatible"
    assert compatibility["read from"] == (f"GET /api/vcenter/namespace-management/cluster-compatibility?"
                                          f"network_provider=VSPHERE_NETWORK, {VCENTER}")
    assert judged.rows["Workload Management licence"]["read from"].endswith(VCENTER)
    with vcsim.soap() as si:  # what the stand-in judged: the simulator's own state
        [cluster] = [c for c in _every(si, vim.ClusterComputeResource) if c.name == "DC0_C0"]
        drs, das = cluster.configurationEx.drsConfig, cluster.configurationEx.dasConfig
        assert (drs.enabled, drs.defaultVmBehavior, das.enabled) == (True, "fullyAutomated", True)


@pytest.mark.parametrize("change, words, fix", [
    (dict(drs_enabled=False), "must have DRS enabled and set to fully automated to enable vSphere Namespaces (DRS is "
                              "off)", "vSphere DRS > Edit: turn DRS on, with automation level Fully Automated"),
    (dict(drs_behavior="partiallyAutomated"), "(DRS is on, partiallyAutomated)",
     "vSphere DRS > Edit: turn DRS on, with automation level Fully Automated"),
    (dict(ha_enabled=False), "must have vSphere HA enabled to enable vSphere Namespaces",
     "vSphere Availability > Edit: turn vSphere HA on"),
])
def test_drs_or_ha_set_wrong_in_the_simulator_is_vcenters_reason_with_its_fix(vcsim, change, words, fix):
    vcsim.configure_cluster("DC0_C0", **change)
    judged = Judged(vcsim)
    [reason] = judged.reasons
    assert words in reason
    [error] = judged.errors
    assert error.path == "workload_management.cluster"
    assert error.message == (f"{VCENTER} says cluster DC0_C0 ({judged.cluster}) cannot take a Supervisor with "
                             f"vSphere networking: \"{reason}\"")
    assert fix in error.fix and error.fix.startswith("in the vSphere Client, cluster DC0_C0 > Configure > Services > ")
    refused = refused_enable(vcsim)
    assert (refused.status, refused.error_type) == (400, "UNSUPPORTED") and reason in str(refused)


def test_a_licence_removed_in_the_simulator_is_refused_for_the_licence(vcsim):
    with vcsim.soap() as si:
        si.content.licenseManager.RemoveLicense(licenseKey=EVALUATION)
    judged = Judged(vcsim)
    assert judged.readiness.licensed is False
    [reason] = judged.reasons
    assert reason == f"Cluster {judged.cluster} has hosts that are not licensed for vSphere Namespaces: DC0_C0_H0, " \
                     f"DC0_C0_H1, DC0_C0_H2."
    capability, cluster = judged.errors
    assert "says no host it manages is licensed for Workload Management" in capability.message
    assert cluster.message.endswith(f"cannot take a Supervisor with vSphere networking: \"{reason}\"")
    for error in (capability, cluster):
        assert error.fix.startswith("assign the hosts of cluster DC0_C0 a licence that includes Workload Management")
    refused = refused_enable(vcsim)
    assert (refused.status, refused.error_type) == (400, "UNABLE_TO_ALLOCATE_RESOURCE") and reason in str(refused)
    with vcsim.soap() as si:  # the same licence added again: licensed again
        si.content.licenseManager.AddLicense(licenseKey=EVALUATION)
    assert Judged(vcsim).findings == []


def test_an_esxi_6_5_host_added_to_the_cluster_is_too_old_and_not_on_the_switch(vcsim):
    """A host added through the simulator's API is govmomi's template, ESXi 6.5.0, and on no switch."""
    with vcsim.soap() as si:
        [cluster] = [c for c in _every(si, vim.ClusterComputeResource) if c.name == "DC0_C0"]
        _wait(cluster.AddHost_Task(spec=vim.host.ConnectSpec(hostName="esx-old.test"), asConnected=True))
    judged = Judged(vcsim)
    version, switch = judged.reasons
    assert "has hosts with an unsupported ESX version (ESXi 7.0 Update 1 or later is needed): esx-old.test ESXi " \
           "6.5.0 build 5969303." in version
    assert "not on one vSphere Distributed Switch 7.0 or later with the others: esx-old.test." in switch
    [too_old] = [e for e in judged.errors if e.message.endswith(f'"{version}"')]
    [off_switch] = [e for e in judged.errors if e.message.endswith(f'"{switch}"')]
    assert "upgrade every host of cluster DC0_C0 to ESXi 7.0 Update 1 or later" in too_old.fix
    assert "add every host of cluster DC0_C0 to distributed switch DVS0" in off_switch.fix
    [on_switch] = [e for e in judged.errors if e.path == "vcenter.distributed_switch"]
    assert "does not hold every host of cluster" in on_switch.message and "esx-old.test" in on_switch.message
    assert "esx-old.test ESXi 6.5.0 build 5969303" in judged.rows["hosts of cluster DC0_C0"]["found"]
    refused = refused_enable(vcsim)
    assert refused.error_type == "UNSUPPORTED" and "unsupported ESX version" in str(refused)


def test_a_port_group_the_switch_does_not_offer_is_an_error_at_its_field(vcsim):
    judged = Judged(vcsim)
    offered = set(judged.readiness.switch_summary.compatible_networks)
    findings = readiness_findings(judged.readiness, cluster_name="DC0_C0", cluster_field="workload_management.cluster",
                                  switch_name="DVS0", portgroups={"networks.management.portgroup": ("vm-net",
                                                                                                      "network-7")})
    [error] = findings
    assert error.path == "networks.management.portgroup" and "network-7" not in offered
    assert f"does not offer port group 'vm-net' (network-7) of distributed switch DVS0 ({judged.switch})" in \
           error.message


def test_a_vcenter_older_than_7_0_1_is_not_asked_and_is_refused_for_its_version():
    readiness = ClusterReadiness(VCenterVersion("7.0.0", "16189094", "7.0.0.0"), "domain-c8", "dvs-21")
    [error] = readiness_findings(readiness, cluster_name="c", cluster_field="workload_management.cluster",
                                 switch_name="s", portgroups={})
    assert error.path == "vcenter.server" and "vCenter 7.0.0 build 16189094 (API 7.0.0.0) predates vSphere " \
                                              "networking for Workload Management" in error.message
    assert error.fix == "upgrade vCenter to 7.0 Update 1 or later, then rerun."
    rows = readiness_rows(readiness, cluster_name="c", switch_name="s")
    assert rows[-1]["found"] == "not asked: it predates vSphere networking (API 7.0.1.0)"


def test_a_reason_in_words_this_runbook_does_not_know_gets_the_general_fix():
    assert fix_for("The cluster has a personality problem.", "C", "S") == (
        "fix it in the vSphere Client (Workload Management > Get Started lists cluster C among the incompatible "
        "ones, with the same reasons), then rerun.")


def _every(si, kind) -> list:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [kind], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def _wait(task) -> None:
    while task.info.state not in ("success", "error"):
        time.sleep(0.02)
    assert task.info.state == "success", task.info.error
