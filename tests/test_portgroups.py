"""The Tanzu port groups on the distributed switch, against the vCenter simulator."""

from __future__ import annotations

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from sim_site import site_for
from tkgs_lib.errors import ConflictError, TkgsError, ValidationFailed, VSphereError
from tkgs_lib.site.layout import network_layout
from tkgs_lib.vsphere.connection import connect
from tkgs_lib.vsphere.inventory import Inventory
from tkgs_lib.vsphere.portgroups import (PortgroupFacts, PortgroupOps, SwitchFacts, plan_portgroups,
                                         read_portgroups, teaming_table)

pytestmark = pytest.mark.vcsim

VmwareDvs = vim.dvs.VmwareDistributedVirtualSwitch
SITE_PORTGROUPS = {"tkgs-management": 26, "tkgs-workload": 27, "tkgs-frontend": 28}


@pytest.fixture
def session(vcsim):
    with connect(site_for(vcsim).vcenter, password=vcsim.password) as session:
        yield session


def prepare_portgroups(session, site):
    """Read the switch and plan the site's port groups, with operations on this vCenter."""
    inventory = Inventory(session, site.vcenter)
    return plan_portgroups(network_layout(site), read_portgroups(inventory), PortgroupOps(inventory))


def _switch_state(switch) -> dict[str, tuple]:
    """Every port group of the switch: VLAN and config version (changes on any reconfiguration)."""
    state = {}
    for pg in switch.portgroup:
        vlan = pg.config.defaultPortConfig.vlan
        state[pg.name] = (getattr(vlan, "vlanId", None) if isinstance(vlan, VmwareDvs.VlanIdSpec) else "other",
                          pg.config.configVersion)
    return state


def test_creates_the_three_port_groups_from_scratch(vcsim, session):
    site = site_for(vcsim)
    plan = prepare_portgroups(session, site)
    assert [(s.object, s.action) for s in plan.steps] == [
        (f"port group {name}", "create") for name in SITE_PORTGROUPS]
    assert [f for f in plan.findings if f.is_error] == []
    done = plan.apply(progress=False)
    assert len(done) == 3
    switch = Inventory(session, site.vcenter).switch
    created = {pg.name: pg for pg in switch.portgroup if pg.name in SITE_PORTGROUPS}
    assert {name: pg.config.defaultPortConfig.vlan.vlanId for name, pg in created.items()} == SITE_PORTGROUPS
    assert {pg.config.type for pg in created.values()} == {"earlyBinding"}


def test_rerun_plans_only_ok_rows_and_changes_nothing(vcsim, session):
    site = site_for(vcsim)
    prepare_portgroups(session, site).apply(progress=False)
    switch = Inventory(session, site.vcenter).switch
    before = _switch_state(switch)
    rerun = prepare_portgroups(session, site)
    assert {s.action for s in rerun.steps} == {"ok"} and rerun.is_noop
    assert rerun.table()["found"].tolist() == ["VLAN 26", "VLAN 27", "VLAN 28"]
    assert rerun.apply(progress=False) == []
    assert _switch_state(switch) == before


def test_default_deployment_wants_only_management_and_workload(vcsim, session):
    site = site_for(vcsim, **{"haproxy.deployment": "default", "haproxy.frontend_ip": None})
    plan = prepare_portgroups(session, site)
    assert [s.object for s in plan.steps] == ["port group tkgs-management", "port group tkgs-workload"]


def test_vlan_conflict_stops_before_anything_is_created(vcsim, session):
    site = site_for(vcsim)
    switch = Inventory(session, site.vcenter).switch
    PortgroupOps(Inventory(session, site.vcenter)).create_portgroup("tkgs-workload", 99)
    before = _switch_state(switch)
    plan = prepare_portgroups(session, site)
    actions = {s.object: s.action for s in plan.steps}
    assert actions == {"port group tkgs-management": "create", "port group tkgs-workload": "conflict",
                       "port group tkgs-frontend": "create"}
    with pytest.raises(ConflictError) as caught:
        plan.apply(progress=False)
    assert "VLAN 99" in str(caught.value) and "networks.workload.vlan is 27" in str(caught.value)
    assert "nothing was changed" in str(caught.value)
    assert _switch_state(switch) == before  # in particular no tkgs-management, no tkgs-frontend


def test_name_of_another_network_is_a_conflict(vcsim, session):
    site = site_for(vcsim, **{"networks.management.portgroup": "VM Network"})  # the simulator's standard network
    plan = prepare_portgroups(session, site)
    step = plan.steps[0]
    assert (step.action, step.found) == ("conflict", "a standard port group")
    assert "networks.management.portgroup" in step.why


def test_switch_without_uplink_names_cannot_be_checked(vcsim, session):
    site = site_for(vcsim)
    inventory = Inventory(session, site.vcenter)
    facts = read_portgroups(inventory)
    assert facts.uplinks == () and facts.hosts  # the simulator's DVS0: member hosts but no uplink names
    plan = plan_portgroups(network_layout(site), facts)
    assert [f.severity for f in plan.findings] == ["warning"]
    assert "cannot check the uplinks" in plan.findings[0].message
    table = teaming_table(network_layout(site), facts)
    # The table alone must not read as the article's "no active uplink" error: it says why it cannot tell.
    assert table["check"].tolist() == ["cannot check: switch defines no uplinks"] * 3
    assert table["switch uplinks"].tolist() == ["none defined"] * 3
    assert table["switch hosts"].iloc[0] == ", ".join(facts.hosts)


def _switch_with_uplinks(session, inventory, name="DVS-uplinks"):
    """A switch with two named uplinks and default order active Uplink 1, standby Uplink 2."""
    config = VmwareDvs.ConfigSpec(
        name=name,
        uplinkPortPolicy=vim.DistributedVirtualSwitch.NameArrayUplinkPortPolicy(
            uplinkPortName=["Uplink 1", "Uplink 2"]),
        defaultPortConfig=VmwareDvs.VmwarePortConfigPolicy(uplinkTeamingPolicy=VmwareDvs.UplinkPortTeamingPolicy(
            uplinkPortOrder=VmwareDvs.UplinkPortOrderPolicy(activeUplinkPort=["Uplink 1"],
                                                            standbyUplinkPort=["Uplink 2"]))))
    task = inventory.datacenter.networkFolder.CreateDVS_Task(vim.DistributedVirtualSwitch.CreateSpec(configSpec=config))
    WaitForTask(task)
    return task.info.result


def test_port_group_without_active_uplink_on_a_switch_with_uplinks_is_an_error(vcsim, session):
    """Built in the simulator: CreateDVS_Task keeps uplink names and a default failover order, and a
    port group keeps its own order (here: no active uplink, Uplink 2 standby)."""
    site = site_for(vcsim, **{"vcenter.distributed_switch": "DVS-uplinks"})
    inventory = Inventory(session, site.vcenter)
    switch = _switch_with_uplinks(session, inventory)
    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        name="tkgs-workload", type="earlyBinding", numPorts=8,
        defaultPortConfig=VmwareDvs.VmwarePortConfigPolicy(
            vlan=VmwareDvs.VlanIdSpec(vlanId=27, inherited=False),
            uplinkTeamingPolicy=VmwareDvs.UplinkPortTeamingPolicy(
                inherited=False, uplinkPortOrder=VmwareDvs.UplinkPortOrderPolicy(
                    inherited=False, activeUplinkPort=[], standbyUplinkPort=["Uplink 2"]))))
    WaitForTask(switch.AddDVPortgroup_Task([spec]))

    before = _switch_state(switch)
    facts = read_portgroups(inventory)
    assert facts.uplinks == ("Uplink 1", "Uplink 2")
    plan = plan_portgroups(network_layout(site), facts)
    errors = [f for f in plan.findings if f.is_error]
    assert [f.path for f in errors] == ["networks.workload.portgroup"]
    assert "has no active uplink" in errors[0].message and "its own" in errors[0].message
    assert "Uplink 1, Uplink 2" in errors[0].fix
    with pytest.raises(ValidationFailed):
        plan.apply(progress=False)
    assert _switch_state(switch) == before  # nothing created

    table = teaming_table(network_layout(site), facts).frame.set_index("port group")
    assert table.loc["tkgs-workload", ["active uplinks", "standby uplinks", "failover order", "check"]].tolist() == [
        "none", "Uplink 2", "its own", "no active uplink"]
    # A port group still to create inherits the switch's order: Uplink 1 active, so no finding for it.
    assert table.loc["tkgs-management", ["VLAN", "active uplinks", "failover order", "check"]].tolist() == [
        "26 (to create)", "Uplink 1", "inherited from the switch", "ok"]


def test_inherited_order_without_active_uplink_is_an_error_too():
    """Values only: the switch's default order has no active uplink, so every inheriting port group
    (existing or to be created) has none; an active uplink the switch does not define does not count."""
    site = _values_site()
    facts = SwitchFacts("DSwitch", uplinks=("Uplink 1", "Uplink 2"), default_active=(),
                        default_standby=("Uplink 1",), hosts=("esx01",), portgroups={
                            "tkgs-management": PortgroupFacts("tkgs-management", "26", 26, inherited=True),
                            "tkgs-workload": PortgroupFacts("tkgs-workload", "27", 27, active=("lag1",),
                                                            inherited=False)})
    plan = plan_portgroups(network_layout(site), facts)
    errors = {f.path: f for f in plan.findings if f.is_error}
    assert set(errors) == {"networks.management.portgroup", "networks.workload.portgroup",
                           "networks.frontend.portgroup"}
    assert "inherited from switch 'DSwitch'" in errors["networks.frontend.portgroup"].message
    assert "active: lag1" in errors["networks.workload.portgroup"].message
    # The table's check column agrees with the findings, row by row.
    assert teaming_table(network_layout(site), facts)["check"].tolist() == ["no active uplink"] * 3
    assert [s.action for s in plan.steps] == ["ok", "ok", "create"]
    with pytest.raises(TkgsError, match=r"made from values only; plan with StageRun\.plan\(\) on a run connected"):
        plan.steps[2].run()


def test_switch_with_uplinks_and_active_ones_has_no_findings():
    facts = SwitchFacts("DSwitch", uplinks=("Uplink 1", "Uplink 2"), default_active=("Uplink 1", "Uplink 2"),
                        hosts=("esx01", "esx02"))
    assert plan_portgroups(network_layout(_values_site()), facts).findings == []
    table = teaming_table(network_layout(_values_site()), facts)
    assert table["check"].tolist() == ["ok"] * 3
    assert list(table.columns) == ["port group", "VLAN", "active uplinks", "standby uplinks", "failover order",
                                   "check", "switch uplinks", "switch hosts"]


def _values_site():
    from pathlib import Path

    from tkgs_lib.site import load_site

    return load_site(Path(__file__).resolve().parent.parent / "examples" / "example-site.yaml")


def test_a_failed_vsphere_task_is_one_sentence_naming_what_was_being_done(vcsim, session):
    """Tasks are waited for, and faults worded, in one place (vsphere/tasks.py)."""
    site = site_for(vcsim)
    ops = PortgroupOps(Inventory(session, site.vcenter))
    ops.create_portgroup("tkgs-twice", 30)
    with pytest.raises(VSphereError) as failure:
        ops.create_portgroup("tkgs-twice", 30)
    message = str(failure.value)
    assert message.startswith("creating port group 'tkgs-twice' (VLAN 30) on switch 'DVS0' failed: ")
    assert "vCenter already has an object named 'tkgs-twice'" in message and "(DuplicateName)" in message
    assert "*types." not in message  # the simulator's Go type name once was the whole sentence
    assert "Traceback" not in message and message.endswith(".")


@pytest.mark.parametrize("fault, words", [
    (vim.fault.DuplicateName(msg="*types.DuplicateName", name="tkgs-workload"),
     "vCenter already has an object named 'tkgs-workload': someone made it after this run read vCenter"),
    (vim.fault.NoPermission(msg="", privilegeId="Network.Assign"), "lacks the privilege Network.Assign"),
    (vmodl.fault.ManagedObjectNotFound(msg="types.ManagedObjectNotFound"), "the object is gone from vCenter"),
    (vim.fault.InvalidState(msg=""), "vCenter gave no message (InvalidState)"),
    (vim.fault.DuplicateName(msg="The name 'x' already exists.", name="x"), "The name 'x' already exists (DuplicateName)"),
])
def test_every_fault_is_a_sentence_never_a_go_type_name(fault, words):
    from tkgs_lib.vsphere.tasks import fault_sentence

    sentence = fault_sentence(fault)
    assert words in sentence and "types." not in sentence
