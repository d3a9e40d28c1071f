"""The Tanzu port groups on the site's distributed switch: read, plan, create; and their teaming.

The site wants one port group per network of its deployment (management, workload and, under
``frontend``, frontend) with its VLAN id, as the network plan lists them. :func:`read_portgroups`
turns the switch into plain values, :func:`plan_portgroups` compares them with the network plan (a
pure function, so every path can be tested with values), and the plan's ``create`` steps call
``AddDVPortgroup_Task`` through :class:`PortgroupOps`.

The article says to check the up-links: a port group whose traffic has no active uplink on a
switch that has uplinks goes nowhere (an error finding). A switch that defines no uplink names
at all (as the simulator's) cannot be checked (a warning). :func:`teaming_table` shows the same
verdict per port group in its ``check`` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from pyVmomi import vim

from ..errors import VSphereError
from ..findings import Finding
from ..site.network import NetworkLayout
from ..planning import Plan, Step, VALUES_ONLY
from .inventory import Inventory
from .tasks import wait_for_task

__all__ = ["PortgroupFacts", "SwitchFacts", "WantedPortgroup", "wanted_portgroups", "read_portgroups",
           "plan_portgroups", "PortgroupOps", "teaming_table", "uplink_check", "TITLE"]

TITLE = "port groups"
DEFAULT_PORTS = 8  # vSphere's default; autoExpand grows an early-binding port group as VMs connect

VmwareDvs = vim.dvs.VmwareDistributedVirtualSwitch


@dataclass(frozen=True)
class PortgroupFacts:
    name: str
    vlan: str  # as vCenter shows it: "26", "trunk 0-4094", "private VLAN 5", "none"
    vlan_id: Optional[int]  # the single VLAN id, None for a trunk, private VLAN or none
    active: tuple[str, ...] = ()
    standby: tuple[str, ...] = ()
    inherited: bool = True  # the failover order is the switch's default
    moid: str = ""  # its managed object id, e.g. dvportgroup-21 (what Workload Management's request names)


@dataclass(frozen=True)
class SwitchFacts:
    name: str
    uplinks: tuple[str, ...] = ()  # the switch's uplink names (Uplink 1...)
    default_active: tuple[str, ...] = ()  # the switch's default failover order
    default_standby: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    portgroups: dict[str, PortgroupFacts] = field(default_factory=dict)
    other_networks: dict[str, str] = field(default_factory=dict)  # name → kind, not on this switch


@dataclass(frozen=True)
class WantedPortgroup:
    role: str  # management, workload, frontend
    name: str
    vlan: int

    @property
    def path(self) -> str:
        return f"networks.{self.role}"


def wanted_portgroups(network: NetworkLayout) -> list[WantedPortgroup]:
    """The port groups the deployment needs, from the network plan: three, or two under ``default``
    (whose plan holds no frontend); a frontend that shares the workload's port group is one."""
    wanted: dict[str, WantedPortgroup] = {}
    for role, net in network.networks.items():
        if net.portgroup and net.vlan is not None:
            wanted.setdefault(net.portgroup, WantedPortgroup(role, net.portgroup, net.vlan))
    return list(wanted.values())


# --- read ------------------------------------------------------------------------------------

def read_portgroups(inventory: Inventory) -> SwitchFacts:
    """The site's distributed switch, its port groups and the datacenter's other networks, as values."""
    switch = inventory.switch
    config = switch.config
    uplinks: tuple[str, ...] = ()
    if isinstance(config.uplinkPortPolicy, vim.DistributedVirtualSwitch.NameArrayUplinkPortPolicy):
        uplinks = tuple(config.uplinkPortPolicy.uplinkPortName or ())
    default_order = _failover_order(config.defaultPortConfig)
    hosts = tuple(sorted(h.name for h in (switch.summary.hostMember or ())))
    portgroups: dict[str, PortgroupFacts] = {}
    for pg in switch.portgroup:
        port_config = pg.config.defaultPortConfig
        order = _failover_order(port_config)
        vlan, vlan_id = _vlan(port_config)
        inherited = order is None or bool(order.inherited)
        portgroups.setdefault(pg.name, PortgroupFacts(
            pg.name, vlan, vlan_id,
            active=tuple(order.activeUplinkPort or ()) if order else (),
            standby=tuple(order.standbyUplinkPort or ()) if order else (),
            inherited=inherited, moid=pg._moId))
    others = {name: _kind(net) for name, net in inventory.networks().items() if name not in portgroups}
    return SwitchFacts(
        switch.name, uplinks,
        default_active=tuple(default_order.activeUplinkPort or ()) if default_order else (),
        default_standby=tuple(default_order.standbyUplinkPort or ()) if default_order else (),
        hosts=hosts, portgroups=portgroups, other_networks=others)


def portgroup_users(session) -> dict[str, tuple[tuple[str, str], ...]]:
    """Every distributed port group vCenter holds, by managed object id: the VMs on it, (id, name) each."""
    view = session.content.viewManager.CreateContainerView(session.content.rootFolder,
                                                           [vim.dvs.DistributedVirtualPortgroup], True)
    try:
        return {pg._moId: tuple(sorted((vm._moId, vm.name) for vm in pg.vm or ())) for pg in view.view}
    finally:
        view.Destroy()


def _failover_order(port_config):
    teaming = getattr(port_config, "uplinkTeamingPolicy", None) if port_config else None
    return getattr(teaming, "uplinkPortOrder", None) if teaming else None


def _vlan(port_config) -> tuple[str, Optional[int]]:
    spec = getattr(port_config, "vlan", None) if port_config else None
    if isinstance(spec, VmwareDvs.VlanIdSpec):
        return str(spec.vlanId), int(spec.vlanId)
    if isinstance(spec, VmwareDvs.TrunkVlanSpec):
        ranges = ", ".join(f"{r.start}-{r.end}" if r.start != r.end else str(r.start) for r in spec.vlanId or ())
        return f"trunk {ranges}", None
    if isinstance(spec, VmwareDvs.PvlanSpec):
        return f"private VLAN {spec.pvlanId}", None
    return "none", None


def _kind(network) -> str:
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        return "port group of another distributed switch"
    if isinstance(network, vim.OpaqueNetwork):
        return "NSX network"
    return "standard port group"


# --- plan ------------------------------------------------------------------------------------

def plan_portgroups(network: NetworkLayout, facts: SwitchFacts, ops: "PortgroupOps" = VALUES_ONLY) -> Plan:
    """Compare the network plan's port groups with ``facts``; ``ops`` (a PortgroupOps) runs the creates."""
    plan = Plan(TITLE)
    switch = facts.name
    for want in wanted_portgroups(network):
        obj, desired = f"port group {want.name}", f"VLAN {want.vlan} on {switch}"
        found = facts.portgroups.get(want.name)
        if found is not None:
            if found.vlan_id == want.vlan:
                plan.add(Step.ok(obj, desired, f"VLAN {found.vlan}"))
            else:
                plan.add(Step.conflict(obj, desired, f"VLAN {found.vlan}",
                                       f"port group '{want.name}' exists on switch '{switch}' with VLAN {found.vlan}, "
                                       f"but {want.path}.vlan is {want.vlan}: fix the VLAN in the site or in vCenter."))
        elif want.name in facts.other_networks:
            kind = facts.other_networks[want.name]
            plan.add(Step.conflict(obj, desired, f"a {kind}",
                                   f"a {kind} named '{want.name}' already exists in the datacenter: give "
                                   f"{want.path}.portgroup another name, or remove that network."))
        else:
            plan.add(Step.create(obj, desired, lambda name=want.name, vlan=want.vlan: ops.create_portgroup(name, vlan)))
    plan.findings += teaming_findings(network, facts)
    return plan


def _effective(want: WantedPortgroup, facts: SwitchFacts) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(active, standby, inherited) the port group has, or will have once created (the switch's default)."""
    found = facts.portgroups.get(want.name)
    if found is not None and not found.inherited:
        return found.active, found.standby, False
    return facts.default_active, facts.default_standby, True


CHECK_OK = "ok"
CHECK_NO_ACTIVE = "no active uplink"
CHECK_UNCHECKABLE = "cannot check: switch defines no uplinks"


def uplink_check(want: WantedPortgroup, facts: SwitchFacts) -> str:
    """The article's up-link check for one port group: ok, no active uplink, or cannot check."""
    if not facts.uplinks:
        return CHECK_UNCHECKABLE
    active, _, _ = _effective(want, facts)
    return CHECK_OK if any(u in facts.uplinks for u in active) else CHECK_NO_ACTIVE


def teaming_findings(network: NetworkLayout, facts: SwitchFacts) -> list[Finding]:
    """The article's up-link check: every port group needs an active uplink of its switch."""
    findings: list[Finding] = []
    if not facts.hosts:
        findings.append(Finding.warning(
            "vcenter.distributed_switch", f"switch '{facts.name}' has no member hosts: its port groups reach "
                                          f"no physical network.",
            "add the cluster's hosts (and their physical NICs) to the switch."))
    if not facts.uplinks:
        findings.append(Finding.warning(
            "vcenter.distributed_switch", f"cannot check the uplinks: switch '{facts.name}' defines no uplink names.",
            "check in vCenter that each Tanzu port group has an active uplink to a routable network."))
        return findings
    for want in wanted_portgroups(network):
        if want.name in facts.other_networks and want.name not in facts.portgroups:
            continue  # a conflict row already says what is wrong
        if uplink_check(want, facts) == CHECK_OK:
            continue
        active, standby, inherited = _effective(want, facts)
        whose = f"inherited from switch '{facts.name}'" if inherited else "its own"
        listed = f"active: {', '.join(active) or 'none'}, standby: {', '.join(standby) or 'none'}"
        fix = ("edit the switch's default port group policy (Teaming and failover)" if inherited else
               f"edit port group '{want.name}' (Teaming and failover)")
        findings.append(Finding.error(
            f"{want.path}.portgroup",
            f"port group '{want.name}' has no active uplink ({listed}; {whose}) although switch '{facts.name}' "
            f"has uplinks {', '.join(facts.uplinks)}: its traffic would go nowhere.",
            f"{fix} and move at least one of {', '.join(facts.uplinks)} to Active uplinks."))
    return findings


TEAMING_COLUMNS = ["port group", "VLAN", "active uplinks", "standby uplinks", "failover order", "check",
                   "switch uplinks", "switch hosts"]


def teaming_table(network: NetworkLayout, facts: SwitchFacts):
    """Each site port group's VLAN, failover order (its own or the switch's) and the article's up-link
    check (ok, no active uplink, or cannot check when the switch defines no uplinks, as the
    simulator's), with the switch's uplinks and hosts."""
    from ..display.tables import Table

    rows = []
    for want in wanted_portgroups(network):
        found = facts.portgroups.get(want.name)
        active, standby, inherited = _effective(want, facts)
        rows.append({
            "port group": want.name,
            "VLAN": found.vlan if found else f"{want.vlan} (to create)",
            "active uplinks": ", ".join(active) or "none",
            "standby uplinks": ", ".join(standby) or "none",
            "failover order": "inherited from the switch" if inherited else "its own",
            "check": uplink_check(want, facts),
            "switch uplinks": ", ".join(facts.uplinks) or "none defined",
            "switch hosts": ", ".join(facts.hosts) or "none",
        })
    return Table(rows, TEAMING_COLUMNS, empty="The site names no port group.")


# --- apply -----------------------------------------------------------------------------------

class PortgroupOps:
    """The changes a port-group plan makes: one ``AddDVPortgroup_Task`` per step."""

    @classmethod
    def for_run(cls, run) -> Optional["PortgroupOps"]:
        return cls(run.inventory) if run.vcenter is not None else None

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    def delete_portgroup(self, moid: str) -> None:
        """Remove the port group ``moid`` (vCenter refuses while a VM is connected to it)."""
        portgroup = vim.dvs.DistributedVirtualPortgroup(moid, self.inventory.session.si._stub)
        wait_for_task(portgroup.Destroy_Task(), f"removing port group {moid}")

    def create_portgroup(self, name: str, vlan: int, ports: int = DEFAULT_PORTS) -> vim.dvs.DistributedVirtualPortgroup:
        """One early-binding port group with VLAN ``vlan``; its teaming is inherited from the switch.
        AddDVPortgroup is all or nothing: a failure leaves nothing to clean up."""
        switch = self.inventory.switch
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            name=name, type="earlyBinding", numPorts=ports, autoExpand=True,
            defaultPortConfig=VmwareDvs.VmwarePortConfigPolicy(
                vlan=VmwareDvs.VlanIdSpec(vlanId=vlan, inherited=False)))
        wait_for_task(switch.AddDVPortgroup_Task([spec]),
                      f"creating port group '{name}' (VLAN {vlan}) on switch '{switch.name}'")
        for pg in switch.portgroup:
            if pg.name == name:
                return pg
        raise VSphereError(f"port group '{name}' was created on switch '{switch.name}' but does not read back.")
