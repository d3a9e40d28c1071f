"""Stage 2, prepare vSphere: port groups, the storage policy and the content libraries, as one plan.

One plan for the whole stage, so a conflict anywhere stops it before anything is changed. A site
without a ``storage`` or ``content_libraries`` block gets a warning finding for it, so the plan
says what it leaves out. Each part is one resource of :mod:`tkgs_lib.vsphere`: its facts, its
pure planner, its operations and its report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..display.tables import Table
from ..vsphere.content_api import ContentLibraryApi
from ..vsphere.library import (ContentLibraryFacts, ContentLibraryOps, library_item_table, library_table,
                               plan_content_libraries, read_content_libraries)
from ..vsphere.portgroups import (PortgroupOps, SwitchFacts, plan_portgroups, read_portgroups, teaming_table,
                                  wanted_portgroups)
from ..vsphere.storage import StorageFacts, StorageOps, compliance_table, plan_storage, read_storage
from . import stage_named
from .provided import PreparedIds, RunObject, VCenterObjects, made_by_run
from ..planning import Plan

STAGE = stage_named("prepare")


@dataclass(frozen=True)
class PrepareFacts:
    switch: SwitchFacts
    storage: Optional[StorageFacts]  # None: the site has no storage block
    libraries: Optional[ContentLibraryFacts]  # None: the site has no content_libraries block


def read_facts(run) -> PrepareFacts:
    """The switch and its port groups, the tags and policies, the libraries and the OVA item."""
    site, inventory = run.site, run.inventory
    inventory.resolve()  # a missing datacenter, cluster, switch or datastore: one sentence, first
    session = run.require_vcenter()
    return PrepareFacts(
        switch=read_portgroups(inventory),
        storage=read_storage(session, inventory, site) if site.storage is not None else None,
        libraries=(read_content_libraries(ContentLibraryApi(session.rest), site, inventory, progress=run.progress)
                   if site.content_libraries is not None else None))


def provides(run, facts: PrepareFacts) -> list:
    """vCenter's ids of what the stage made or found, for the deploy and enable stages; and the record of
    which of them this run made (for the destroy stage)."""
    wanted = {net.portgroup for net in run.network.networks.values() if net.portgroup}
    policies = facts.storage.policies if facts.storage is not None else []
    subscribed = facts.libraries.subscribed if facts.libraries is not None else []
    return [PreparedIds({name: pg.moid for name, pg in facts.switch.portgroups.items() if name in wanted},
                        policies[0].id if len(policies) == 1 else "",
                        subscribed[0].id if len(subscribed) == 1 else ""),
            VCenterObjects.of(objects(run, facts))]


def objects(run, facts: PrepareFacts) -> list[RunObject]:
    """What the read found of the site's objects, by vCenter's ids, in the plan's order; each made by this run
    when a request of its create row left this run folder (its ledger), else found already there."""
    def entry(kind: str, name: str, oid: str, row: str, within: str = "") -> RunObject:
        return RunObject(kind, name, oid, made_by_run(run.output, row), STAGE.name, within)

    out = [entry("port group", want.name, facts.switch.portgroups[want.name].moid, f"port group {want.name}")
           for want in wanted_portgroups(run.network) if want.name in facts.switch.portgroups]
    storage, site = facts.storage, run.site
    if storage is not None and storage.category is not None:
        c, t = site.storage.tag_category, site.storage.tag
        out.append(entry("tag category", c, storage.category.id, f"tag category {c}"))
        tag = storage.tags.get(t)
        if tag is not None:
            out.append(entry("tag", t, tag.id, f"tag {t}", storage.category.id))
            out += [entry("tag attachment", f"{t} on datastore {name}", storage.datastores[name],
                          f"tag {t} on datastore {name}", tag.id)
                    for name in site.vcenter.datastores if t in storage.attached.get(name, ())]
    if storage is not None and len(storage.policies) == 1:
        p = site.storage.policy
        out.append(entry("storage policy", p, storage.policies[0].id, f"storage policy {p}"))
    libraries = facts.libraries
    if libraries is not None:
        want = site.content_libraries
        if len(libraries.subscribed) == 1:
            name = want.kubernetes.name
            out.append(entry("subscribed library", name, libraries.subscribed[0].id, f"subscribed library '{name}'"))
        if len(libraries.local) == 1:
            name, local = want.haproxy.name, libraries.local[0]
            out.append(entry("local library", name, local.id, f"local library '{name}'"))
            if len(libraries.items) == 1:
                item = want.haproxy.item
                out.append(entry("library item", item, libraries.items[0].id, f"OVA item '{item}' in '{name}'",
                                 local.id))
    return out


def plan(run, facts: PrepareFacts) -> Plan:
    """Every object of the stage; the operations act on the run's vCenter (none: a values-only plan)."""
    plan = Plan(STAGE.title)
    plan.extend(plan_portgroups(run.network, facts.switch, run.operations(PortgroupOps)))
    plan.extend(plan_storage(run.site, facts.storage, run.operations(StorageOps)))
    plan.extend(plan_content_libraries(run.site, facts.libraries, run.operations(ContentLibraryOps)))
    return plan


def reports(run, facts: PrepareFacts) -> dict[str, Table]:
    """What vCenter reports: port group teaming, storage compliance, the libraries and the OVA item."""
    site = run.site
    tables = {"port group teaming": teaming_table(run.network, facts.switch)}
    if facts.storage is not None:
        tables["datastores and the storage policy"] = compliance_table(site, facts.storage)
    if facts.libraries is not None:
        tables["content libraries"] = library_table(site, facts.libraries)
        tables["the HAProxy OVA item"] = library_item_table(site, facts.libraries)
    return tables
