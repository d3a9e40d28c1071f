"""Stage 3, deploy the HAProxy appliance: from the content library (or the OVA itself), with every
vApp property, the deployment option and the network mapping; the cloud-init setting; power-on;
and the appliance's CA collected once it has booted.

Facts: the OVA's descriptor (read from the OVA file, matched to the library item by the manifest
digest the prepare stage recorded), the site's port groups, the placement (folder, resource pool,
datastore, storage policy) and any VM of the appliance's name. Plan: the properties checked
against the descriptor (:mod:`tkgs_lib.appliance.properties`), then the VM's rows
(:mod:`tkgs_lib.vsphere.vm`). After apply, :func:`collect_ca` saves ``haproxy-ca.pem``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..appliance.ca import CA_FILE, CA_GUESTINFO, CaCertificate
from ..appliance.properties import ApplianceProperties
from ..appliance.releases import ARTICLE_RELEASE, KNOWN, RELEASES_URL, release_needed, release_number, release_of
from ..credentials import SECRET_PROPERTIES
from ..errors import ApplianceError, OvaError
from ..findings import Finding
from ..ova import DIGEST_PREFIX, Ova, OvfDescriptor
from ..planning import Plan, Step
from ..display.tables import Table
from ..vsphere.connection import VCenterVersion
from ..vsphere.content_api import ContentLibraryApi
from ..vsphere.vm import BootWait, DeploySource, DeploySpec, Placement, VmFacts, VmOps, plan_vm, read_vms, vm_table
from . import stage_named
from .appliance_vm import appliance_placement, appliance_property_values, network_mapping
from .provided import (ApplianceCa, ApplianceRelease, ApplianceVm, DataplaneAddress, PreparedIds, RunObject,
                       VCenterObjects, made_by_run)

STAGE = stage_named("deploy")


@dataclass
class DeployFacts:
    descriptor: OvfDescriptor
    source: Optional[DeploySource]  # None: no usable source (the conflict says why)
    source_problem: str
    portgroups: dict[str, str]  # the site's port groups that exist: name → managed object id
    placement: Optional[Placement]
    vms: list[VmFacts]
    findings: list[Finding] = field(default_factory=list)  # placement problems, found while reading
    vcenter: Optional[VCenterVersion] = None  # which vCenter the appliance goes to (its about)


# --- read ------------------------------------------------------------------------------------------

def _read_ova(site) -> tuple[Ova, str]:
    path, field_name = site.ova()
    if path is None:
        raise OvaError("haproxy.ova: the site has no content_libraries block, so the appliance is deployed from "
                       "the OVA file itself: give its path in haproxy.ova (or add content_libraries and run the "
                       "prepare stage).")
    if not path.exists():
        raise OvaError(f"{field_name}: the OVA file {path} does not exist; download the HAProxy OVA and give its path "
                       f"(relative to the site file).")
    try:
        return Ova(path), field_name
    except OvaError as exc:
        raise exc.reworded(f"{field_name}: {exc.message}") from None


def _library_source(session, site, ova: Ova, descriptor_text: str) -> tuple[Optional[DeploySource], str]:
    want = site.content_libraries.haproxy
    api = ContentLibraryApi(session.rest)
    libraries = [lib for lib in api.libraries_named(want.name) if lib.type == "LOCAL"]
    if len(libraries) != 1:
        return None, (f"{'no' if not libraries else len(libraries)} local library named '{want.name}': run the prepare "
                      f"stage with apply first.")
    items = api.items_named(libraries[0].id, want.item)
    if len(items) != 1:
        return None, (f"{'no' if not items else len(items)} item named '{want.item}' in library '{want.name}': run "
                      f"the prepare stage with apply first.")
    item, digest = items[0], ova.manifest_digest()
    if item.manifest_digest != digest:
        return None, (f"library item '{want.item}' holds another OVA (its recorded digest is "
                      f"{item.manifest_digest or 'missing'}, the site's OVA has {DIGEST_PREFIX}{digest[:12]}…): run "
                      f"the prepare stage, which reports it, and give content_libraries.haproxy.item a new name.")
    return DeploySource("library", ova.path, descriptor_text, want.name, want.item, item.id), ""


def read_facts(run) -> "DeployFacts":
    """The OVA's descriptor and source, the port groups, the placement, and any VM of the appliance's name.
    The port groups' and storage policy's ids are the prepare stage's (provided.json) when it ran in this
    run folder; else vCenter is asked."""
    site, inventory = run.site, run.inventory
    inventory.resolve(("datacenter", "cluster", "switch"))
    ova, _ = _read_ova(site)
    descriptor_text = ova.read_bytes(ova.descriptor_member.name).decode("utf-8", errors="replace")
    descriptor = ova.descriptor()
    vms = read_vms(inventory, site.haproxy.vm_name)
    if site.content_libraries is not None:
        source, problem = _library_source(run.require_vcenter(), site, ova, descriptor_text)
    else:
        if not vms:  # an import is planned: the OVA must match its manifest first
            ova.verify(progress=run.progress)
        source, problem = DeploySource("file", ova.path, descriptor_text), ""
    prepared = run.provided.get(PreparedIds)  # the prepare stage's ids, when it ran in this run folder
    portgroups = inventory.portgroup_ids({net.portgroup for net in run.network.networks.values() if net.portgroup},
                                         prepared.portgroups if prepared is not None else {})
    findings: list[Finding] = []
    placement = appliance_placement(run, findings)
    return DeployFacts(descriptor, source, problem, portgroups, placement, vms, findings,
                       run.require_vcenter().version)


def provides(run, facts: DeployFacts) -> list:
    """The appliance release this run deploys, for the verify and repair stages; and, once deployed, the VM."""
    from ..appliance.releases import ADDITIONAL_WORKLOAD_NETWORKS

    path, _ = run.site.ova()
    declares = any(p.key == ADDITIONAL_WORKLOAD_NETWORKS for p in facts.descriptor.properties)
    values: list = [ApplianceRelease(facts.descriptor.version, f"the descriptor of the OVA {path.name}", declares)]
    if len(facts.vms) == 1:
        vm = facts.vms[0]
        values.append(ApplianceVm(vm.name, vm.moid))
        # made by this run when its deploy (a create row, or a replacing change row) was sent from this run folder
        values.append(VCenterObjects.of([RunObject("VM", vm.name, vm.moid, made_by_run(
            run.output, f"VM {vm.name}", ("create", "change")), STAGE.name)]))
    return values


# --- plan ------------------------------------------------------------------------------------------

def properties(run, facts: DeployFacts) -> ApplianceProperties:
    """Every property that will be sent, checked against the OVA (:func:`.appliance_vm.appliance_property_values`)."""
    return appliance_property_values(run, facts.descriptor)


def property_table(run, facts: DeployFacts) -> Table:
    return properties(run, facts).table()


def _release_for_vcenter(release, vcenter: Optional[VCenterVersion], ova: str, field_name: str) -> list[Finding]:
    """An error when the OVA's release is older than vCenter takes (the appliance's README at v0.2.0)."""
    needed = release_needed(vcenter.number) if vcenter is not None else None
    if needed is None or release_number(release) >= needed.number:
        return []
    said = release.found or f"unnamed, judged as {release.release}"
    return [Finding.error(field_name, f"the OVA {ova} is the appliance's release {said}, and {vcenter} is 7.0.1 or "
                                      f"later, which needs release {needed} or later (the appliance's README at "
                                      f"v0.2.0: \"If running on or upgrading to vSphere 7.0.1 or later, you must "
                                      f"upgrade to version v0.1.9 or later\").",
                          f"deploy release {ARTICLE_RELEASE} (haproxy-{ARTICLE_RELEASE}.ova, the article's) or v0.2.0 "
                          f"instead: download its OVA from {RELEASES_URL} and give its path in {field_name}.")]


def plan(run, facts: DeployFacts) -> Plan:
    site = run.site
    result = Plan(STAGE.title, findings=list(facts.findings))
    props = properties(run, facts)
    result.findings += props.findings
    path, field_name = site.ova()
    release = release_of(facts.descriptor, f"the descriptor of the OVA {path.name}")
    if not release.known:
        result.findings.append(Finding.warning(field_name, release.warning(),
                                               f"deploy an OVA of a release tkgs-runbook knows ({', '.join(KNOWN)}), "
                                               f"or verify the appliance's route tables by hand."))
    result.findings += _release_for_vcenter(release, facts.vcenter, path.name, field_name)
    mapping = network_mapping(run, facts.descriptor, facts.portgroups, result.findings)
    ova_obj = f"OVA {facts.descriptor.name} ({facts.descriptor.version or 'version unknown'})"
    if facts.source is None:
        result.add(Step.conflict(ova_obj, "in the content library, as prepared", "not usable", facts.source_problem))
        return result
    if facts.placement is None or [f for f in result.findings if f.is_error]:
        return result  # the findings say what to fix; nothing is planned on a broken base
    spec = DeploySpec(site.haproxy.vm_name, run.network.deployment, mapping, props.as_dict(),
                      SECRET_PROPERTIES, facts.placement,
                      site.haproxy.disk_provisioning)
    management = run.network.networks["management"].appliance
    boot = BootWait(str(management.ip), float(site.haproxy.boot_timeout), CA_GUESTINFO)
    return result.extend(plan_vm(spec, facts.source, facts.vms, boot, replace=site.haproxy.replace_existing,
                                 ops=run.operations(VmOps)))


# --- after apply -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CollectedCa:
    """The appliance's CA as collected, or why it could not be (not deployed, dry run)."""

    ca: Optional[CaCertificate]
    saved: Optional[Path]
    note: str = ""

    def table(self) -> Table:
        rows = self.ca.rows() + [{"what": "saved as", "value": str(self.saved)}] if self.ca else []
        return Table(rows, ["what", "value"], empty=self.note)

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return self.table().to_text()


def collect_ca(run) -> CollectedCa:
    """Read the CA the appliance published (``guestinfo.dataplaneapi.cacert``), check it is a CA, save
    it as ``haproxy-ca.pem`` in the run folder, and show its subject, validity and fingerprint."""
    name = run.site.haproxy.vm_name
    vms = read_vms(run.inventory, name)
    target = run.output / CA_FILE
    if len(vms) != 1 or not vms[0].powered_on:
        target.unlink(missing_ok=True)
        state = "is not deployed" if not vms else "is not powered on" if len(vms) == 1 else "is not unique"
        return CollectedCa(None, None, f"No CA collected: VM {name} {state} (a dry run changes nothing; apply "
                                       f"deploys and powers it on).")
    ca, why = run.published_ca(vms)
    if ca is None:
        raise ApplianceError(f"VM {name} is powered on but {why}: the appliance has not configured itself; look at "
                             f"its console and /var/log/cloud-init-output.log.")
    target.write_text(ca.pem if ca.pem.endswith("\n") else ca.pem + "\n")
    management = run.network.networks["management"].appliance.ip
    run.provide(ApplianceCa(target.name), ApplianceVm(name, vms[0].moid),  # for verify and enable
                DataplaneAddress(str(management), run.site.haproxy.dataplane_port))
    return CollectedCa(ca, target)


def descriptor_table(descriptor: OvfDescriptor) -> Table:
    """What the OVA declares: its version, deployment options, networks and every property with its
    type, qualifiers, default and the deployment options it belongs to."""
    rows = [{"what": "appliance", "name": descriptor.name, "detail": descriptor.version or "version unknown"}]
    rows += [{"what": "deployment option", "name": o.id,
              "detail": ("default; " if o.default else "") + (o.description or o.label)}
             for o in descriptor.deployment_options]
    rows += [{"what": "network", "name": n.name,
              "detail": (f"only under {', '.join(n.configurations)}; " if n.configurations else "") + n.description}
             for n in descriptor.networks]
    rows += [{"what": "property", "name": p.key,
              "detail": "; ".join(part for part in (
                  p.type + (" (password)" if p.password else ""), p.qualifiers,
                  f"default {p.default!r}" if p.default is not None else "no default",
                  f"only under {', '.join(p.configurations)}" if p.configurations else "") if part)}
             for p in descriptor.properties if p.user_configurable]
    return Table(rows, ["what", "name", "detail"], empty="The OVA declares nothing.")


def reports(run, facts: DeployFacts) -> dict[str, Table]:
    """What the OVA declares, and the VM as vCenter reports it (NICs, power, guest address, the
    properties it holds, passwords masked)."""
    return {"the OVA's descriptor": descriptor_table(facts.descriptor),
            "the appliance VM": vm_table(facts.vms, SECRET_PROPERTIES)}
