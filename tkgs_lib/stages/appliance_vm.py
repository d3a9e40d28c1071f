"""The appliance's VM as the site places and configures it, for every stage that deploys one (deploy, and an
upgrade's new release beside the old): its placement (folder, resource pool, datastore, storage policy), the
OVA's networks mapped to the site's port groups, and the vApp property values checked against the OVA.
Not a stage: the stages that deploy share it, as they share :mod:`.supervisor`.
"""

from __future__ import annotations

from typing import Optional

from ..appliance.properties import DATAPLANE_PASSWORD, ROOT_PASSWORD, ApplianceProperties, appliance_properties
from ..errors import NotFound
from ..findings import Finding
from ..ova import OvfDescriptor
from ..vsphere.vm import OVF_NETWORK_ORDER, Placement
from .provided import PreparedIds

__all__ = ["appliance_placement", "network_mapping", "appliance_property_values"]


def appliance_placement(run, findings: list[Finding]) -> Optional[Placement]:
    """Where the appliance's VM goes (folder, resource pool, datastore, storage policy) as the site says; a
    missing one is a finding in ``findings`` and None."""
    site, inventory = run.site, run.inventory
    hp = site.haproxy
    try:
        folder, folder_shown = inventory.vm_folder(hp.vm_folder)
    except NotFound as exc:
        findings.append(Finding.error("haproxy.vm_folder", exc.message, "create the folder, or set "
                                                                       "haproxy.vm_folder: null."))
        return None
    try:
        pool, pool_shown = inventory.resource_pool(hp.resource_pool)
    except NotFound as exc:
        findings.append(Finding.error("haproxy.resource_pool", exc.message, "name an existing resource pool, or "
                                                                           "set haproxy.resource_pool: null."))
        return None
    name = hp.datastore or (site.vcenter.datastores[0] if site.vcenter.datastores else "")
    field_name = "haproxy.datastore" if hp.datastore else "vcenter.datastores[0]"
    try:
        datastore = inventory.datastore(name, field_name)
    except NotFound as exc:
        findings.append(Finding.error(field_name, exc.message, "name an existing datastore."))
        return None
    policy_id = policy = None
    prepared = run.provided.get(PreparedIds)  # the prepare stage's, when it ran in this run folder
    recorded = prepared.storage_policy if prepared is not None else ""
    if site.storage is not None and recorded:
        policy_id, policy = recorded, site.storage.policy
    elif site.storage is not None:
        from ..vsphere.storage import read_policies

        policies = read_policies(run.require_vcenter(), site.storage.policy)
        if len(policies) == 1:
            policy_id, policy = policies[0].id, policies[0].name
        else:
            findings.append(Finding.warning(
                "storage.policy", f"{'no' if not policies else len(policies)} VM storage policy named "
                                  f"'{site.storage.policy}': the appliance is placed on datastore {name} alone.",
                "run the prepare stage with apply first, so the appliance's disk follows the Tanzu policy."))
    return Placement(folder._moId, folder_shown, pool._moId, pool_shown, datastore._moId, name, policy_id, policy)


def network_mapping(run, descriptor: OvfDescriptor, portgroups: dict[str, str],
                    findings: list[Finding]) -> dict[str, tuple[str, str]]:
    """The OVA's networks for the deployment option (Management, Workload, Frontend) → the site's
    port group for each (``portgroups``: name → managed object id), by the network plan's roles."""
    mapping: dict[str, tuple[str, str]] = {}
    ovf_networks = descriptor.networks_for(run.network.deployment)
    for ovf in ovf_networks:
        role = ovf.lower()
        planned = run.network.networks.get(role)
        if ovf not in OVF_NETWORK_ORDER or planned is None:
            findings.append(Finding.error("haproxy.deployment", f"the OVA's network {ovf!r} has no site network to "
                                                                f"map to.", "use the HAProxy appliance's OVA."))
            continue
        moid = portgroups.get(planned.portgroup)
        if moid is None:
            findings.append(Finding.error(f"networks.{role}.portgroup", f"port group '{planned.portgroup}' does not "
                                                                        f"exist in vCenter.",
                                          "run the prepare stage with apply first."))
            continue
        mapping[ovf] = (planned.portgroup, moid)
    return mapping


def appliance_property_values(run, descriptor: OvfDescriptor) -> ApplianceProperties:
    """Every property that will be sent to an appliance of the OVA ``descriptor``, checked against it; the two
    passwords from their environment variables (or a prompt), read once per run."""
    hp = run.site.haproxy
    passwords = {
        ROOT_PASSWORD: run.secret(hp.root_password_env, "the appliance's root password", "haproxy.root_password_env"),
        DATAPLANE_PASSWORD: run.secret(hp.dataplane_password_env, "the Data Plane API password",
                                       "haproxy.dataplane_password_env"),
    }
    return appliance_properties(run.site, run.network, descriptor, passwords)
