"""Stage 5, repair the HAProxy appliance: the article's fix, from the verify stage's findings.

Over SSH (host key checked), the appliance's facts are read as the verify stage reads them; the
plan changes ``/etc/vmware/route-tables.cfg`` (and v0.2.0's ``workload-networks.cfg``) and
``/etc/vmware/anyip-routes.cfg`` where they are not what the appliance's release writes for the
plan, each shown as a diff first, and nothing changes unless ``apply``. Each
change has a dated backup on the appliance and a rollback (:mod:`tkgs_lib.appliance.repair`).
After apply the appliance is read again: every row must be ok, and its checks are shown.
"""

from __future__ import annotations

from ..appliance.checks import ApplianceFacts, appliance_checks, checks_table, gather_appliance_facts
from ..appliance.repair import RepairOps, diffs_markdown, plan_repair
from ..planning import Plan
from ..display.tables import Table
from . import stage_named

STAGE = stage_named("repair")


def read_facts(run) -> ApplianceFacts:
    """The appliance's facts in one exec; right after an apply, the read its last change's own check
    made (nothing has changed since), so the stage's read after apply costs no exec of its own."""
    runner = run.connect_appliance()
    fresh = run.operations(RepairOps).take_read_after_change()
    return fresh if fresh is not None else gather_appliance_facts(runner, run.network, run.appliance_release)


def diffs(run, facts: ApplianceFacts):
    """What the repair would change, as a diff of each file, before anything changes."""
    return diffs_markdown(run.network, facts, run.appliance_release)


def plan(run, facts: ApplianceFacts) -> Plan:
    release = run.appliance_release
    result = plan_repair(run.network, facts, run.operations(RepairOps), release)
    result.title = STAGE.title
    return result


def reports(run, facts: ApplianceFacts) -> dict[str, Table]:
    return {"the appliance, checked": checks_table(appliance_checks(run.network, facts, run.appliance_release))}
