"""The appliance VM's planner as a pure function of facts: an existing VM compared with the plan,
as a real vCenter reports it (with vApp properties) and as the simulator does (without)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tkgs_lib.errors import TkgsError
from tkgs_lib.vsphere.vm import (CLOUD_INIT_KEY, BootWait, DeploySource, DeploySpec, Nic, Placement, VmFacts, plan_vm,
                                 vm_differences)

PLACEMENT = Placement("group-v3", "DC0/vm", "resgroup-9", "DC0_C0", "datastore-1", "LocalDS_0")
SOURCE = DeploySource("library", Path("haproxy-v0.1.10.ova"), "<Envelope/>", "HAProxy", "haproxy-v0.1.10", "item-1")
SPEC = DeploySpec(
    "haproxy01", "frontend",
    {"Management": ("tkgs-management", "dvportgroup-1"), "Workload": ("tkgs-workload", "dvportgroup-2"),
     "Frontend": ("tkgs-frontend", "dvportgroup-3")},
    {"appliance.root_pwd": "secret-1", "network.hostname": "haproxy01.test.corp",
     "loadbalance.service_ip_range": "10.64.1.0/24"},
    frozenset({"appliance.root_pwd"}), PLACEMENT, "thin")
BOOT = BootWait("10.64.2.10", 600)
NICS = (Nic("Network adapter 1", "tkgs-management", "00:50:56:8f:ce:26"),
        Nic("Network adapter 2", "tkgs-workload", "00:50:56:8f:e5:ba"),
        Nic("Network adapter 3", "tkgs-frontend", "00:50:56:8f:3d:28"))
DEPLOYED = VmFacts("haproxy01", "vm-42", "poweredOn", NICS,
                   {"appliance.root_pwd": "", "network.hostname": "haproxy01.test.corp",
                    "loadbalance.service_ip_range": "10.64.1.0/24"},
                   {CLOUD_INIT_KEY: "FALSE"}, ("10.64.2.10",))


def actions(plan):
    return [(s.object, s.action) for s in plan.steps]


def test_nothing_there_plans_deploy_setting_and_power_on():
    plan = plan_vm(SPEC, SOURCE, [], BOOT)
    assert actions(plan) == [("VM haproxy01", "create"),
                             (f"advanced setting {CLOUD_INIT_KEY} of haproxy01", "create"),
                             ("power of haproxy01", "change")]
    assert "library item 'haproxy-v0.1.10' of 'HAProxy': frontend (3 NICs" in plan.steps[0].desired
    assert "secret-1" not in repr(plan) and "secret-1" not in plan.table().to_text()
    with pytest.raises(TkgsError, match=r"made from values only; plan with StageRun\.plan\(\) on a run connected"):
        plan.steps[0].run()


def test_the_deployed_vm_is_all_ok_and_a_password_is_never_compared():
    assert vm_differences(DEPLOYED, SPEC) == []  # its root_pwd reads back empty, as vCenter hides it
    plan = plan_vm(SPEC, SOURCE, [DEPLOYED], BOOT)
    assert {a for _, a in actions(plan)} == {"ok"} and plan.is_noop


def test_each_difference_is_listed_and_the_vm_is_a_conflict():
    other = dataclasses.replace(DEPLOYED, nics=NICS[:2], properties={**DEPLOYED.properties,
                                                                     "network.hostname": "lb.test.corp"})
    plan = plan_vm(dataclasses.replace(SPEC), SOURCE, [other], BOOT)
    (step,) = plan.steps  # nothing is planned after a conflicting VM
    assert step.action == "conflict"
    assert "it has 2 NICs (default), the plan 3 (frontend)" in step.why
    assert "property network.hostname is 'lb.test.corp', the plan sends 'haproxy01.test.corp'" in step.why
    assert "replace_existing: true" in step.why


def test_a_nic_on_another_port_group_is_a_difference():
    moved = dataclasses.replace(DEPLOYED, nics=(NICS[0], Nic("Network adapter 2", "VM Network", ""), NICS[2]))
    assert vm_differences(moved, SPEC) == [
        "Network adapter 2 (Workload) is on VM Network, the plan puts it on tkgs-workload"]


def test_properties_vcenter_does_not_hold_are_said_so_and_not_compared():
    simulator_like = dataclasses.replace(DEPLOYED, properties=None)
    plan = plan_vm(SPEC, SOURCE, [simulator_like], BOOT)
    assert plan.steps[0].action == "ok"
    assert "its vApp properties could not be read" in plan.steps[0].found


def test_replacing_is_shown_as_a_change_only_when_the_site_allows_it():
    other = dataclasses.replace(DEPLOYED, nics=NICS[:2])
    plan = plan_vm(SPEC, SOURCE, [other], BOOT, replace=True)
    assert actions(plan) == [("VM haproxy01", "change"),
                             (f"advanced setting {CLOUD_INIT_KEY} of haproxy01", "create"),
                             ("power of haproxy01", "change")]
    assert plan.steps[0].why.startswith("haproxy.replace_existing is true: the VM is destroyed and deployed again")


def test_a_vm_powered_on_without_the_cloud_init_setting_is_a_conflict():
    late = dataclasses.replace(DEPLOYED, extra_config={})
    plan = plan_vm(SPEC, SOURCE, [late], BOOT)
    setting = plan.steps[1]
    assert setting.action == "conflict" and "never configured itself" in setting.why


def test_two_vms_of_the_name_are_a_conflict():
    plan = plan_vm(SPEC, SOURCE, [DEPLOYED, DEPLOYED], BOOT)
    assert actions(plan) == [("VM haproxy01", "conflict")]
