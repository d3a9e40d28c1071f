"""Stage 2, prepare vSphere: port groups, the storage policy and the content libraries, as one plan.

One plan for the whole stage, so a conflict anywhere stops it before anything is changed. A site
without a ``storage`` or ``content_libraries`` block gets a warning finding for it, so the plan
says what it leaves out.
"""

from __future__ import annotations

from .plan import Plan
from .site import Site
from .vsphere.inventory import Inventory
from .vsphere.library import library_item_table, library_table, plan_content_libraries, read_content_libraries
from .vsphere.portgroups import prepare_portgroups, read_portgroups, teaming_table
from .vsphere.storage import compliance_table, prepare_storage, read_storage

STAGE = "prepare vSphere"


def plan_prepare(session, site: Site, *, progress: bool = True) -> Plan:
    """Read vCenter and plan every object of the stage; changes nothing."""
    inventory = Inventory(session, site.vcenter)
    inventory.check()
    plan = Plan(STAGE)
    plan.extend(prepare_portgroups(session, site, inventory))
    plan.extend(prepare_storage(session, site, inventory))  # without site.storage: only a warning
    plan.extend(plan_content_libraries(session, site, inventory, progress=progress))  # likewise
    return plan


def prepare_reports(session, site: Site) -> dict:
    """What vCenter reports after (or before) the stage, as titled tables: port group teaming, storage
    compliance, the content libraries and the HAProxy OVA item."""
    inventory = Inventory(session, site.vcenter)
    reports = {"port group teaming": teaming_table(site, read_portgroups(session, inventory))}
    if site.storage is not None:
        reports["datastores and the storage policy"] = compliance_table(site, read_storage(session, inventory, site))
    if site.content_libraries is not None:
        state = read_content_libraries(session, site, inventory)
        reports["content libraries"] = library_table(session, site, state)
        reports["the HAProxy OVA item"] = library_item_table(session, site, state)
    return reports
