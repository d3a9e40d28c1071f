"""The appliance's VM: read it, plan it (deploy, the cloud-init setting, power-on), change it.

Read, plan, apply, like every resource. :func:`read_vms` turns each VM of the appliance's name into
a :class:`VmFacts` value (NICs and their port groups, power state, vApp properties where vCenter
holds them, advanced settings, guest addresses); :func:`plan_vm` compares them with a
:class:`DeploySpec` (a pure function); :class:`VmOps` deploys (from a content-library item, or the
OVA file itself through :mod:`tkgs_lib.vsphere.ovf_import`), sets the advanced setting, powers on
and waits for the guest, and destroys a VM being replaced.

An existing VM is never redeployed unless the site allows replacing it, and then only after the
plan has shown the replacement. vCenter records no deployment option: it is inferred from the
NICs (2: default, 3: frontend). Password properties are never shown and never compared.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pyVmomi import vim

from ..errors import VSphereError
from ..planning import PendingId, Plan, Step, VALUES_ONLY
from ..display.tables import Table
from .inventory import Inventory
from .tasks import vsphere_call, wait_for_task

log = logging.getLogger(__name__)

__all__ = ["CLOUD_INIT_KEY", "Nic", "VmFacts", "Placement", "DeploySource", "DeploySpec", "BootWait",
           "GuestState", "read_vms", "last_values", "vm_differences", "plan_vm", "VmOps", "vm_table", "TITLE"]

TITLE = "appliance VM"
# Without it, on vSphere 8.0U3 the appliance never configures itself: set before the first power-on.
CLOUD_INIT_KEY, CLOUD_INIT_VALUE = "guest_rpc.auth.cloud-init.set", "FALSE"
OVF_NETWORK_ORDER = ("Management", "Workload", "Frontend")


# --- facts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Nic:
    label: str  # "Network adapter 1"
    network: str  # the port group (or network) it is connected to, by name
    mac: str


@dataclass(frozen=True)
class VmFacts:
    name: str
    moid: str
    power_state: str  # poweredOn, poweredOff, suspended
    nics: tuple[Nic, ...]
    properties: Optional[dict[str, str]]  # vApp property values; None when vCenter holds no vApp config
    extra_config: dict[str, str] = field(default_factory=dict)  # advanced settings, the last value of each key
    guest_addresses: tuple[str, ...] = ()
    folder: str = ""

    @property
    def inferred_deployment(self) -> str:
        """vCenter records no deployment option: the appliance's NIC count tells it."""
        return {2: "default", 3: "frontend"}.get(len(self.nics), f"{len(self.nics)} NICs")

    @property
    def powered_on(self) -> bool:
        return self.power_state == "poweredOn"


def last_values(options) -> dict[str, str]:
    """Advanced settings as key → value; a key set twice keeps its last value (the simulator's
    ReconfigVM appends rather than replaces)."""
    values: dict[str, str] = {}
    for option in options or ():
        values[option.key] = "" if option.value is None else str(option.value)
    return values


def _nics(vm, network_names: dict[str, str]) -> tuple[Nic, ...]:
    nics = []
    for device in vm.config.hardware.device if vm.config else ():
        if not isinstance(device, vim.vm.device.VirtualEthernetCard):
            continue
        backing = device.backing
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            key = backing.port.portgroupKey if backing.port else ""
            network = network_names.get(key, key)
        elif isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
            network = backing.deviceName or (backing.network.name if backing.network else "")
        else:
            network = type(backing).__name__
        label = device.deviceInfo.label if device.deviceInfo else f"NIC {device.key}"
        nics.append(Nic(label, network, (device.macAddress or "").lower()))
    return tuple(nics)


def _vm_facts(vm, network_names: dict[str, str]) -> VmFacts:
    config = vm.config
    vapp = getattr(config, "vAppConfig", None) if config else None
    properties = None
    if vapp is not None:
        properties = {(p.id or p.label or ""): (p.value if p.value is not None else (p.defaultValue or ""))
                      for p in vapp.property or ()}
    addresses = guest_addresses(vm.guest)
    return VmFacts(vm.name, vm._moId, str(vm.runtime.powerState), _nics(vm, network_names), properties,
                   last_values(config.extraConfig if config else ()), tuple(addresses),
                   vm.parent.name if vm.parent else "")


def read_vms(inventory: Inventory, name: str) -> list[VmFacts]:
    """Every VM of the datacenter called ``name`` (vCenter allows one per folder)."""
    session = inventory.session
    view = session.content.viewManager.CreateContainerView(inventory.datacenter.vmFolder, [vim.VirtualMachine], True)
    try:
        found = [vm for vm in view.view if vm.name == name]
    finally:
        view.Destroy()
    if not found:
        return []
    network_names = {getattr(net, "key", ""): net_name for net_name, net in inventory.networks().items()}
    return [_vm_facts(vm, network_names) for vm in found]


def vm_power_states(session) -> dict[str, tuple[str, str]]:
    """Every VM vCenter holds, by managed object id: its name and power state."""
    view = session.content.viewManager.CreateContainerView(session.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return {vm._moId: (vm.name, str(vm.runtime.powerState)) for vm in view.view}
    finally:
        view.Destroy()


# --- what is wanted ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    folder_id: str
    folder: str  # as shown: the folder's path
    pool_id: str
    pool: str
    datastore_id: str
    datastore: str
    policy_id: Optional[str] = None  # the storage policy asked for, when the site has one
    policy: Optional[str] = None


@dataclass(frozen=True)
class DeploySource:
    """Where the appliance comes from: a content-library item, or the OVA file itself."""

    kind: str  # "library" or "file"
    ova: Path
    descriptor: str  # the OVF descriptor's text (what an import spec is made from)
    library: str = ""
    item_name: str = ""
    item_id: str = ""

    def describe(self) -> str:
        if self.kind == "library":
            return f"library item '{self.item_name}' of '{self.library}'"
        return f"the OVA file {self.ova.name}"


@dataclass(frozen=True)
class DeploySpec:
    name: str
    deployment: str
    networks: dict[str, tuple[str, str]]  # OVF network (Management...) → (port group name, its moid)
    properties: dict[str, str]  # key → value; a secret's a Secret (its repr masked), sent by plain()
    password_keys: frozenset[str]  # the keys that carry a secret: never shown, never compared
    placement: Placement
    provisioning: str

    def describe(self) -> str:
        nets = ", ".join(f"{k}→{v[0]}" for k, v in self.networks.items())
        where = f"{self.placement.folder}, pool {self.placement.pool}, datastore {self.placement.datastore}"
        policy = f", policy {self.placement.policy}" if self.placement.policy else ""
        return (f"{self.deployment} ({len(self.networks)} NICs: {nets}); {len(self.properties)} properties; "
                f"{where}{policy}; {self.provisioning} disk")


@dataclass(frozen=True)
class BootWait:
    """What a booted appliance shows: its management address among the guest's, and its CA."""

    management_ip: str
    timeout: float
    ca_guestinfo: str = "guestinfo.dataplaneapi.cacert"  # where the appliance publishes its CA (not a key)


# --- plan ----------------------------------------------------------------------------------------

def vm_differences(found: VmFacts, spec: DeploySpec) -> list[str]:
    """How an existing VM differs from the spec: its NICs and their port groups, and its vApp
    properties where vCenter holds them (passwords neither shown nor compared)."""
    differences = []
    if found.inferred_deployment != spec.deployment:
        differences.append(f"it has {len(found.nics)} NICs ({found.inferred_deployment}), the plan "
                           f"{len(spec.networks)} ({spec.deployment})")
    for nic, (ovf_network, (portgroup, _)) in zip(found.nics, spec.networks.items()):
        if nic.network != portgroup:
            differences.append(f"{nic.label} ({ovf_network}) is on {nic.network}, the plan puts it on {portgroup}")
    if found.properties is not None:
        for key, wanted in spec.properties.items():
            if key in spec.password_keys:
                continue
            have = found.properties.get(key)
            if have != wanted:
                differences.append(f"property {key} is {have!r}, the plan sends {wanted!r}")
    return differences


def plan_vm(spec: DeploySpec, source: DeploySource, existing: list[VmFacts], boot: BootWait, *,
            replace: bool = False, ops: "VmOps" = VALUES_ONLY) -> Plan:
    """The VM's rows: deploy (or ok, conflict, replace), the cloud-init setting, power-on."""
    plan = Plan(TITLE)
    obj = f"VM {spec.name}"
    desired = f"deployed from {source.describe()}: {spec.describe()}"
    vm_id = PendingId(f"VM {spec.name}")
    deploy = lambda: vm_id.set(ops.deploy(source, spec))  # noqa: E731
    if len(existing) > 1:
        plan.add(Step.conflict(obj, desired, f"{len(existing)} VMs of that name",
                               f"vCenter has {len(existing)} VMs named '{spec.name}' in the datacenter; rename or "
                               f"delete the extra ones, or give haproxy.vm_name another name."))
        return plan
    found = existing[0] if existing else None
    if found is None:
        plan.add(Step.create(obj, desired, deploy))
    else:
        described = f"{found.power_state}, {len(found.nics)} NICs on {', '.join(n.network for n in found.nics)}"
        if found.properties is None:
            described += "; its vApp properties could not be read (vCenter holds no vApp config for it)"
        differences = vm_differences(found, spec)
        if not differences:
            vm_id.set(found.moid)
            plan.add(Step.ok(obj, desired, described))
        elif replace:
            plan.add(Step.change(obj, desired, described, lambda old=found.moid: (ops.destroy(old), deploy()),
                                 why="haproxy.replace_existing is true: the VM is destroyed and deployed again, "
                                     "because " + "; ".join(differences) + "."))
            found = None  # what follows applies to the new VM
        else:
            plan.add(Step.conflict(obj, desired, described,
                                   "; ".join(differences) + ". Fix the site or the VM, or set "
                                   "haproxy.replace_existing: true to destroy and deploy it again."))
            return plan

    setting = f"advanced setting {CLOUD_INIT_KEY} of {spec.name}"
    have = found.extra_config.get(CLOUD_INIT_KEY) if found else None
    if have == CLOUD_INIT_VALUE:
        plan.add(Step.ok(setting, CLOUD_INIT_VALUE, have))
    elif found is not None and found.powered_on:
        plan.add(Step.conflict(setting, f"{CLOUD_INIT_VALUE} before the first power-on", have or "not set",
                               "the VM was powered on without it, so on vSphere 8.0U3 the appliance never "
                               "configured itself; set haproxy.replace_existing: true to deploy it again."))
    else:
        plan.add(Step.create(setting, f"{CLOUD_INIT_VALUE} before the first power-on",
                             lambda: ops.set_advanced(vm_id.get(), CLOUD_INIT_KEY, CLOUD_INIT_VALUE),
                             found=have or "not set"))

    power = f"power of {spec.name}"
    wanted = f"on; the guest reports {boot.management_ip} and publishes its CA within {boot.timeout:.0f} s"
    if found is not None and found.powered_on:
        plan.add(Step.ok(power, wanted, "on" + (f", guest reports {', '.join(found.guest_addresses)}"
                                               if found.guest_addresses else "")))
    else:
        plan.add(Step.change(power, wanted, found.power_state if found else "not deployed yet",
                             lambda: ops.power_on(vm_id.get(), boot), why="the appliance configures itself at "
                                                                          "its first boot"))
    return plan


# --- apply ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GuestState:
    power_state: str
    addresses: tuple[str, ...]
    ca_published: bool

    def missing(self, boot: BootWait) -> list[str]:
        gaps = []
        if self.power_state != "poweredOn":
            gaps.append(f"the VM is {self.power_state}, not powered on")
        if boot.management_ip not in self.addresses:
            gaps.append(f"the guest never reported its management address {boot.management_ip} (it reports: "
                        f"{', '.join(self.addresses) or 'no address'})")
        if not self.ca_published:
            gaps.append(f"no CA was published in {boot.ca_guestinfo}")
        return gaps


class VmOps:
    """The changes a VM plan makes: deploy, an advanced setting, power-on (and the wait for the
    guest), power-off, rename, destroy. Every task is waited for, and every fault worded, in :mod:`.tasks`."""

    @classmethod
    def for_run(cls, run) -> Optional["VmOps"]:
        return cls(run.vcenter, run.inventory, progress=run.progress) if run.vcenter is not None else None

    def __init__(self, session, inventory: Inventory, *, progress: bool = True) -> None:
        self.session, self.inventory, self.progress = session, inventory, progress

    def vm(self, moid: str) -> vim.VirtualMachine:
        return vim.VirtualMachine(moid, self.session.si._stub)

    def deploy(self, source: DeploySource, spec: DeploySpec) -> str:
        """Deploy the appliance; returns the new VM's managed object id. On any failure nothing of it is left."""
        if source.kind == "library":
            from .ovf_deploy import deploy_library_item

            return deploy_library_item(self.session, self.inventory, source, spec, destroy=self.destroy_named)
        from .ovf_import import import_ova

        return import_ova(self.session, self.inventory, source, spec, progress=self.progress)

    def set_advanced(self, moid: str, key: str, value: str) -> None:
        vm = self.vm(moid)
        spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=key, value=value)])
        with vsphere_call(f"setting {key} on VM {moid}"):
            name = vm.name
        wait_for_task(vm.ReconfigVM_Task(spec), f"setting {key} = {value} on VM '{name}'")

    def clear_vapp_values(self, moid: str, ids: list[str]) -> None:
        """Empty the values of the vApp properties ``ids`` (vCenter keeps each property, with no value)."""
        vm = self.vm(moid)
        with vsphere_call(f"reading VM {moid}'s vApp properties"):
            name = vm.name
            found = {p.id: p.key for p in (vm.config.vAppConfig.property if vm.config.vAppConfig else ()) or ()}
        edits = [vim.vApp.PropertySpec(operation="edit", info=vim.vApp.PropertyInfo(key=found[i], value=""))
                 for i in ids if i in found]
        if edits:
            wait_for_task(vm.ReconfigVM_Task(vim.vm.ConfigSpec(vAppConfig=vim.vApp.VmConfigSpec(property=edits))),
                          f"emptying {', '.join(ids)} of VM '{name}'")

    def power_on(self, moid: str, boot: BootWait, on_poll: Optional[Callable[[], None]] = None) -> GuestState:
        """Power on, then wait until the guest reports the management address and publishes its CA."""
        vm = self.vm(moid)
        with vsphere_call(f"reading VM {moid}"):
            name = vm.name
        wait_for_task(vm.PowerOnVM_Task(), f"powering on VM '{name}'")
        return wait_for_guest(vm, name, boot, progress=self.progress, on_poll=on_poll)

    def power_off(self, moid: str) -> bool:
        """Power the VM off (vCenter's "Power Off", not a guest shutdown); whether it was on. An upgrade powers the
        old appliance off before the new one powers on: two appliances on one network "will ARP for the same IP
        addresses causing flaky connections" (haproxytech/vmware-haproxy, tag v0.2.0, docs/upgrade.md)."""
        vm = self.vm(moid)
        with vsphere_call(f"reading VM {moid}"):
            name, state = vm.name, vm.runtime.powerState
        if state != "poweredOn":
            return False
        wait_for_task(vm.PowerOffVM_Task(), f"powering off VM '{name}'")
        return True

    def rename(self, moid: str, new_name: str) -> None:
        """Give the VM another name (an upgrade's old appliance, kept beside the new one to go back to)."""
        vm = self.vm(moid)
        with vsphere_call(f"reading VM {moid}"):
            name = vm.name
        wait_for_task(vm.Rename_Task(new_name), f"renaming VM '{name}' to '{new_name}'")

    def destroy(self, moid: str) -> None:
        vm = self.vm(moid)
        with vsphere_call(f"reading VM {moid}"):
            name = vm.name
        self.power_off(moid)
        wait_for_task(vm.Destroy_Task(), f"destroying VM '{name}'")

    def destroy_named(self, name: str) -> bool:
        """Destroy every VM called ``name`` (what a failed deploy left); whether there was one."""
        found = read_vms(self.inventory, name)
        for vm in found:
            self.destroy(vm.moid)
        return bool(found)


def guest_addresses(guest) -> list[str]:
    """The addresses VMware Tools reports: the primary first, then each NIC's, once each."""
    addresses: list[str] = []
    if guest is not None:
        if guest.ipAddress:
            addresses.append(guest.ipAddress)
        for net in guest.net or ():
            addresses += [a for a in net.ipAddress or () if a not in addresses]
    return addresses


def guest_state(vm, ca_guestinfo: str) -> GuestState:
    with vsphere_call(f"reading VM '{vm.name}'"):
        addresses = guest_addresses(vm.guest)
        published = bool(last_values(vm.config.extraConfig).get(ca_guestinfo))
        return GuestState(str(vm.runtime.powerState), tuple(addresses), published)


def wait_for_guest(vm, name: str, boot: BootWait, *, progress: bool = True, poll: float = 0.5,
                   on_poll: Optional[Callable[[], None]] = None) -> GuestState:
    """Wait, with a progress display, until the guest shows what a booted appliance shows. VMware
    Tools status is not waited on (the simulator never reports them running); the address is."""
    from ..polling import wait_until

    def timed_out(state: GuestState, elapsed: float) -> VSphereError:
        gaps = "; ".join(state.missing(boot))
        return VSphereError(
            f"VM '{name}' did not come up within {boot.timeout:.0f} s (haproxy.boot_timeout): {gaps}. Look at "
            f"the VM's console in vCenter: a guest that stops at its login prompt without addresses did not "
            f"get its vApp properties (is {CLOUD_INIT_KEY} = {CLOUD_INIT_VALUE}?); one that shows addresses "
            f"but no CA is still configuring itself, or failed to (see /var/log/cloud-init-output.log).")

    return wait_until(lambda: guest_state(vm, boot.ca_guestinfo), lambda state: not state.missing(boot),
                      timeout=boot.timeout, timed_out=timed_out, interval=poll,
                      on_poll=(lambda state, elapsed: on_poll()) if on_poll else None,
                      progress=f"waiting for {name} to boot", show_progress=progress)


# --- report --------------------------------------------------------------------------------------

def vm_table(found: list[VmFacts], password_keys: frozenset[str] = frozenset()) -> Table:
    """The VM as vCenter reports it: power state, guest addresses, each NIC and its port group, and
    the vApp properties vCenter holds (passwords masked)."""
    rows = []
    for vm in found:
        rows.append({"what": "power state", "value": vm.power_state})
        rows.append({"what": "guest addresses", "value": ", ".join(vm.guest_addresses) or "none reported"})
        rows.append({"what": "folder", "value": vm.folder})
        for nic in vm.nics:
            rows.append({"what": nic.label, "value": f"{nic.network} ({nic.mac})"})
        rows.append({"what": CLOUD_INIT_KEY, "value": vm.extra_config.get(CLOUD_INIT_KEY, "not set")})
        if vm.properties is None:
            rows.append({"what": "vApp properties", "value": "vCenter holds none for this VM"})
        else:
            for key, value in sorted(vm.properties.items()):
                masked = "********" if key in password_keys and value else value
                rows.append({"what": f"property {key}", "value": masked})
    return Table(rows, ["what", "value"], empty="No VM of the appliance's name exists.")
