"""The upgrade stage (a day-2 stage, run only when named): the running appliance replaced by a later release,
as the appliance's ``docs/upgrade.md`` (tag v0.2.0) describes it: "swapping out the currently deployed VM with
a new VM" deployed "with an identical configuration", the old one powered down before the new one powers on
("It is very important to not run both appliances on the same network because they will ARP for the same IP
addresses"), kept to go back to, and removed only once the new one serves.

Read: the site's ``upgrade`` block and its OVA's release, the release the run folder records for the running
appliance, the VM of the appliance's name, the placement and port groups as the deploy stage reads them
(:mod:`.appliance_vm`), the Supervisor, and the running appliance's CA and key over SSH
(:mod:`tkgs_lib.appliance.carried_ca`: its key a secret read at run time, handed to the runner). Plan: one
row, the appliance's release. Apply: the old VM renamed ``<vm_name>-<its release>``, the new one deployed
powered off under the appliance's name with the same properties and the old one's CA (so its server
certificate chains to what the Supervisor trusts, and vCenter needs no change), the cloud-init setting, the
old VM powered off, the new one powered on, checked as the verify stage checks an appliance
(:mod:`.verification`), then the Supervisor's virtual IP waited for through it (:mod:`.supervisor`). A
failure at any point destroys the new VM, names the old one back, powers it on and waits for the Supervisor
through it again, and says so.

The new appliance makes its own SSH host keys at its first boot: ``haproxy.ssh_known_hosts`` must hold them
(read off its console) before it is checked, or the check fails on the host key and the old one is put back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from ..appliance.ca import CA_GUESTINFO, one_line_pem
from ..appliance.carried_ca import CarriedCa, read_running_ca
from ..appliance.checks import Check, checks_table
from ..appliance.releases import ADDITIONAL_WORKLOAD_NETWORKS, RELEASES_URL, ReleaseChoice, release_number, release_of
from ..credentials import SECRET_PROPERTIES, Secret, plain
from ..display.tables import Table
from ..errors import ApplianceError, OvaError, TkgsError
from ..findings import Finding
from ..ova import Ova, OvfDescriptor
from ..planning import Plan, Step
from ..vsphere.vm import (CLOUD_INIT_KEY, CLOUD_INIT_VALUE, BootWait, DeploySource, DeploySpec, Placement, VmFacts,
                          VmOps, read_vms, vm_table)
from . import stage_named
from .appliance_vm import appliance_placement, appliance_property_values, network_mapping
from .provided import ApplianceRelease, ApplianceVm, PreparedIds, RunObject, VCenterObjects
from .supervisor import SupervisorNow, read_supervisor, wait_until_served
from .verification import checks as appliance_checks, read_facts as read_appliance

STAGE = stage_named("upgrade")
CHECKS_FILE = "upgrade-checks.csv"  # the new appliance, checked before the old one is let go
SUPERVISOR_FILE = "upgrade-supervisor-checks.csv"  # the Supervisor through the new appliance


@dataclass
class UpgradeFacts:
    asked: object = None  # the site's upgrade block (None: nothing asked)
    ova: Optional[Path] = None
    descriptor: Optional[OvfDescriptor] = None
    source: Optional[DeploySource] = None
    new: Optional[ReleaseChoice] = None  # the release of upgrade.ova
    running: Optional[ReleaseChoice] = None  # the running appliance's, as the run folder records it
    recorded: Optional[ApplianceRelease] = None  # that record itself, put back when the old appliance is
    vms: list[VmFacts] = field(default_factory=list)  # the VMs of the appliance's name
    kept: list[VmFacts] = field(default_factory=list)  # before an upgrade: VMs of the name the old one gets
    portgroups: dict[str, str] = field(default_factory=dict)
    placement: Optional[Placement] = None
    carried: Optional[CarriedCa] = None
    carried_problem: str = ""
    supervisor: Optional[SupervisorNow] = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """The run folder records the new release as the running one (this stage's record, once it served)."""
        return bool(self.new and self.running and self.new.found and self.running.found == self.new.found)


def kept_name(run, running: Optional[ReleaseChoice]) -> str:
    """The name the old appliance's VM is kept under: ``<vm_name>-<its release>``."""
    return f"{run.site.haproxy.vm_name}-{(running.found if running else '') or 'old'}"


# --- read ------------------------------------------------------------------------------------------

def _read_ova(path: Path) -> Ova:
    if not path.is_file():
        raise OvaError(f"upgrade.ova: the OVA file {path} does not exist; download the release's OVA from "
                       f"{RELEASES_URL} and give its path (relative to the site file).")
    try:
        return Ova(path)
    except OvaError as exc:
        raise exc.reworded(f"upgrade.ova: {exc.message}") from None


def read_facts(run) -> UpgradeFacts:
    """The new OVA's release, the running one's, the VMs, and (before an upgrade) what deploying the new one
    takes: the placement, the port groups, the running appliance's CA and key, the Supervisor."""
    facts = UpgradeFacts(run.site.upgrade)
    if facts.asked is None:
        return facts
    inventory = run.inventory
    inventory.resolve(("datacenter", "cluster", "switch"))
    facts.ova = Path(facts.asked.ova)
    ova = _read_ova(facts.ova)
    facts.descriptor = ova.descriptor()
    facts.new = release_of(facts.descriptor, f"the descriptor of the OVA {facts.ova.name}")
    facts.running, facts.recorded = run.appliance_release, run.provided.get(ApplianceRelease)
    name = run.site.haproxy.vm_name
    facts.vms = read_vms(inventory, name)
    if facts.done:
        return facts
    facts.kept = read_vms(inventory, kept_name(run, facts.running))
    ova.verify(progress=run.progress)  # imported whole: it must match its manifest first
    facts.source = DeploySource("file", ova.path, ova.read_bytes(ova.descriptor_member.name).decode(
        "utf-8", errors="replace"))
    prepared = run.provided.get(PreparedIds)
    facts.portgroups = inventory.portgroup_ids({net.portgroup for net in run.network.networks.values()
                                                if net.portgroup}, prepared.portgroups if prepared else {})
    facts.placement = appliance_placement(run, facts.findings)
    if len(facts.vms) == 1 and facts.vms[0].powered_on:
        try:
            facts.carried = read_running_ca(run.connect_appliance(), _management(run))
        except ApplianceError as exc:
            facts.carried_problem = exc.message
    facts.supervisor = read_supervisor(run)
    return facts


def _management(run) -> str:
    return str(run.network.networks["management"].appliance.ip)


# --- plan ------------------------------------------------------------------------------------------

def _blockers(run, facts: UpgradeFacts) -> list[Finding]:
    name, new, running = run.site.haproxy.vm_name, facts.new, facts.running
    found: list[Finding] = []
    if release_number(new) <= release_number(running):
        found.append(Finding.error(
            "upgrade.ova", f"the OVA {facts.ova.name} is release {new.found or new.release.version}, not later than "
                           f"the running appliance's {running.found or running.release.version} ({running.source}).",
            f"name the OVA of a later release (see {RELEASES_URL}); going back is the old VM kept by an upgrade."))
    if len(facts.vms) != 1:
        found.append(Finding.error(
            "haproxy.vm_name", f"vCenter has {len(facts.vms) or 'no'} VM{'s' if len(facts.vms) != 1 else ''} named "
                               f"'{name}': an upgrade replaces one running appliance.",
            "run the deploy stage first, or rename the extra VMs."))
    elif not facts.vms[0].powered_on:
        found.append(Finding.error("haproxy.vm_name", f"VM '{name}' is {facts.vms[0].power_state}: its CA is read from "
                                                      f"the running appliance.", "power it on, then run again."))
    elif facts.carried is None:
        found.append(Finding.error("upgrade", facts.carried_problem or "the running appliance's CA was not read.",
                                   "see the sentence."))
    if facts.kept:
        found.append(Finding.error(
            "upgrade", f"vCenter has a VM named '{facts.kept[0].name}' already, the name the old appliance is kept "
                       f"under.", "remove or rename it (an earlier upgrade's old appliance?), then run again."))
    return found


def _adds(facts: UpgradeFacts) -> str:
    """What the new release adds that the plan should say (v0.2.0's additional workload networks)."""
    declares = any(p.key == ADDITIONAL_WORKLOAD_NETWORKS for p in facts.descriptor.properties)
    had = facts.recorded.declares_additional_workload_networks if facts.recorded else False
    if declares and not had:
        return (f" Release {facts.new.found} adds {ADDITIONAL_WORKLOAD_NETWORKS}: workload networks beyond the "
                f"primary, routed by the appliance (none are sent here: the settings stay identical).")
    return ""


def plan(run, facts: UpgradeFacts) -> Plan:
    result = Plan(STAGE.title, findings=list(facts.findings))
    if facts.asked is None:
        result.findings.append(Finding.warning("upgrade", "the site has no upgrade block: nothing to upgrade.",
                                               "add upgrade.ova, the OVA of the release to upgrade to."))
        return result
    name, new, running = run.site.haproxy.vm_name, facts.new, facts.running
    shown_new = new.found or new.release.version
    obj, wanted = f"appliance {name}", f"release {shown_new}, from {facts.ova.name}, with the same settings and CA"
    kept = kept_name(run, running)
    if facts.done:
        result.add(Step.ok(obj, wanted, f"release {shown_new} ({running.source})"))
        return result
    result.findings += _blockers(run, facts)
    props = appliance_property_values(run, facts.descriptor)
    result.findings += props.findings
    mapping = network_mapping(run, facts.descriptor, facts.portgroups, result.findings)
    if facts.placement is None or [f for f in result.findings if f.is_error]:
        return result
    values = {**props.as_dict(), "appliance.ca_cert": one_line_pem(facts.carried.ca.pem),
              "appliance.ca_cert_key": Secret(one_line_pem(plain(facts.carried.key)))}
    spec = DeploySpec(name, run.network.deployment, mapping, values, SECRET_PROPERTIES, facts.placement,
                      run.site.haproxy.disk_provisioning)
    boot = BootWait(_management(run), float(run.site.haproxy.boot_timeout), CA_GUESTINFO)
    served = (f"then the Supervisor's virtual IP waited for through it (up to {facts.asked.supervisor_timeout} s)"
              if facts.supervisor is not None and facts.supervisor.info is not None else
              "(the cluster has no Supervisor to wait for)")
    removal = "the old VM then destroyed" if facts.asked.remove_old else f"the old VM kept, powered off, as {kept}"
    old = facts.vms[0]
    ops = run.operations(UpgradeOps)
    result.add(Step.change(
        obj, wanted, f"release {running.found or running.release.version} ({running.source}), {old.power_state}",
        lambda: ops.upgrade(facts, spec, boot),
        why=(f"the new VM deployed beside the old with the same properties and the running appliance's CA "
             f"({facts.carried.ca.fingerprint[:23]}…), so vCenter needs no change; the old VM renamed {kept} and the "
             f"new one {name}; the old VM powered off before the new one powers on; the new appliance checked as "
             f"verify checks it, {served}; {removal}. Any failure destroys the new VM and puts the old one back on."
             + _adds(facts))))
    return result


# --- apply -----------------------------------------------------------------------------------------

class UpgradeOps:
    """The upgrade's changes, through the VM transport (:class:`~tkgs_lib.vsphere.vm.VmOps`: on the ledger), and
    the way back."""

    @classmethod
    def for_run(cls, run) -> Optional["UpgradeOps"]:
        vms = VmOps.for_run(run)
        return cls(run, vms) if vms is not None else None

    def __init__(self, run, vms: VmOps) -> None:
        self.run, self.vms = run, vms

    def upgrade(self, facts: UpgradeFacts, spec: DeploySpec, boot: BootWait) -> None:
        """Deployed beside the old one under a name of its own (the old VM's folder on the datastore keeps the
        appliance's name), then the names swapped, the old VM powered off, the new one on, checked, served."""
        run, vms, old, name = self.run, self.vms, facts.vms[0], spec.name
        state = {"new": None, "old_off": False}
        try:
            new_id = state["new"] = vms.deploy(facts.source, replace(spec, name=f"{name}-{facts.new.found}"))
            vms.set_advanced(new_id, CLOUD_INIT_KEY, CLOUD_INIT_VALUE)
            vms.rename(old.moid, kept_name(run, facts.running))
            vms.rename(new_id, name)
            state["old_off"] = vms.power_off(old.moid)
            vms.power_on(new_id, boot)
            self._judged_as(ApplianceRelease(facts.new.found, facts.new.source, any(
                p.key == ADDITIONAL_WORKLOAD_NETWORKS for p in facts.descriptor.properties)))
            self._verified(facts)
            self._served(facts, "the new appliance", keep=SUPERVISOR_FILE)
        except TkgsError as exc:
            back = self._put_back(facts, name, old, state["new"], state["old_off"], boot)
            raise ApplianceError(f"the upgrade to release {facts.new.found} failed: {exc.message.rstrip('.')}. "
                                 f"{back}") from None
        run.provide(ApplianceVm(name, new_id))
        # the record destroy removes from: the new VM is this run's (its deploy answered with its id)
        run.provide(VCenterObjects.of([RunObject("VM", name, new_id, True, STAGE.name)]))
        if facts.asked.remove_old:
            vms.destroy(old.moid)

    def _judged_as(self, release: Optional[ApplianceRelease]) -> None:
        """The run record's release of the appliance now answering (what verify's checks judge it by), and a new
        SSH session for it."""
        run = self.run
        if release is not None:
            run.provide(release)
        run.__dict__.pop("appliance_release", None)  # read again from the record
        if run.appliance is not None:
            run.appliance.close()
            run.appliance = None

    def _appliance_now(self):
        """The SSH session to the appliance answering now, opened again when the last one ended (the appliance it
        reached powered off or destroyed since)."""
        run = self.run
        if run.appliance is not None and not run.appliance.is_open:
            run.appliance.close()
            run.appliance = None
        return run.connect_appliance()

    def _verified(self, facts: UpgradeFacts) -> None:
        """Verify's checks of the new appliance, and the CA its VM publishes: the one carried over."""
        carried = facts.carried.ca.fingerprint
        published, where = self.run.published_ca()
        ca = Check("the CA carried over", f"the new VM publishes the running appliance's CA ({carried})",
                   f"{published.fingerprint} ({where})" if published is not None else where,
                   "ok" if published is not None and published.fingerprint == carried else "failed",
                   "the new appliance did not take appliance.ca_cert and ca_cert_key: see its "
                   "/var/log/cloud-init-output.log.")
        rows = [ca] + appliance_checks(self.run, read_appliance(self.run))
        checks_table(rows).to_csv(self.run.output / CHECKS_FILE)
        failed = [row for row in rows if row.status in ("failed", "not checked")]
        if failed:
            raise ApplianceError(f"the new appliance failed verify's checks ({CHECKS_FILE}): "
                                 + "; ".join(f"{row.check}: {row.found}" for row in failed))

    def _served(self, facts: UpgradeFacts, what: str, keep: str = "") -> None:
        """Wait until the Supervisor is served through the appliance now answering; its checks kept in ``keep``."""
        if facts.supervisor is None or facts.supervisor.info is None:
            return
        hp = self.run.site.haproxy
        password = self.run.secret(hp.dataplane_password_env, "the Data Plane API password",
                                   "haproxy.dataplane_password_env")
        rows = wait_until_served(self.run, runner=self._appliance_now, password=password,
                                 ca_pem=facts.carried.ca.pem, timeout=facts.asked.supervisor_timeout, what=what,
                                 progress=self.run.progress)
        if keep:
            checks_table(rows).to_csv(self.run.output / keep)

    def _put_back(self, facts: UpgradeFacts, name: str, old: VmFacts, new_id: Optional[str], old_off: bool,
                  boot: BootWait) -> str:
        """The new VM destroyed, the old one named back and powered on again, the Supervisor waited for through it;
        what was done, in words (and what is left to do by hand when putting back fails too)."""
        done: list[str] = []
        try:
            if new_id is not None:
                self.vms.destroy(new_id)
                done.append("the new VM destroyed")
            self.vms.rename(old.moid, name)
            done.append(f"the old VM named {name} again")
            if old_off:
                self.vms.power_on(old.moid, boot)
                done.append("powered on again")
                self._judged_as(facts.recorded)
                self._served(facts, "the old appliance, put back", keep=SUPERVISOR_FILE)
                if facts.supervisor is not None and facts.supervisor.info is not None:
                    done.append("the Supervisor's virtual IP answering through it again")
        except TkgsError as exc:
            return (f"Putting the old appliance back failed too: {exc.message.rstrip('.')} (done: "
                    f"{', '.join(done) or 'nothing'}). By hand: power off and delete any new VM of the release, name "
                    f"VM {old.moid} {name} again and power it on.")
        return f"Put back: {', '.join(done)}."


# --- report ----------------------------------------------------------------------------------------

def reports(run, facts: UpgradeFacts) -> dict[str, Table]:
    """The appliance's VM as vCenter reports it now (passwords masked)."""
    return {"the appliance VM": vm_table(read_vms(run.inventory, run.site.haproxy.vm_name), SECRET_PROPERTIES)}


__all__ = ["STAGE", "UpgradeFacts", "UpgradeOps", "read_facts", "plan", "reports", "kept_name", "CHECKS_FILE",
           "SUPERVISOR_FILE"]
