"""Stage 4, verify the HAProxy appliance: the article's "Checking HA Proxy", read-only.

The checks (:mod:`.verification`, shared with the stages that must prove an appliance works): the
Data Plane API's ``/v2/info`` over HTTPS, trusted through the appliance's CA (the one the
deploy stage saved in the run folder, else the one the VM publishes, read from vCenter, else the
site's own ``haproxy.ca_cert_file``: the report says which); then over SSH, host key checked,
each of the appliance's facts (:mod:`tkgs_lib.appliance.checks`): its interfaces, failed units,
``anyip-routes.service`` and its file and routes, the route tables and rules, each gateway from
its own interface. One row per check, each failure with its likely cause and fix. Nothing on
the appliance is changed: repair is the next stage.
"""

from __future__ import annotations

from ..appliance.checks import checks_table
from ..errors import VerificationFailed
from ..findings import Finding
from ..planning import Plan
from ..display.tables import Sentence, Table
from . import stage_named
from .verification import VerifyFacts, checks, read_facts

STAGE = stage_named("verify")


def checks_report(run, facts: VerifyFacts) -> Table:
    return checks_table(checks(run, facts))


def plan(run, facts: VerifyFacts) -> Plan:
    """Nothing to change (verify only reads): each failed check, or one that could not run, is an error finding."""
    unproven = [c for c in checks(run, facts) if c.status in ("failed", "not checked")]
    return Plan(STAGE.title, findings=[Finding.error(f"appliance: {c.check}", c.found, c.fix or "see its row.")
                                       for c in unproven])


def reports(run, facts: VerifyFacts) -> dict[str, Table]:
    return {"the appliance, checked": checks_report(run, facts)}


def conclude(run, facts: VerifyFacts) -> Sentence:
    """Save the checks (verify-checks.csv); raise VerificationFailed naming every failed check and every
    check that could not run (one that could not run proves nothing: it is no pass). The first cause
    comes first: a session lost while the facts were read, before what it kept from being checked."""
    rows = checks(run, facts)
    checks_table(rows).to_csv(run.output / STAGE.checks_file)
    failed = [c for c in rows if c.failed]
    unchecked = [c for c in rows if c.status == "not checked"]
    if not failed and not unchecked:
        return Sentence(f"All {len(rows)} checks of the appliance passed.")
    lost = facts.appliance.lost if facts.appliance is not None else ""
    head = (f"{lost}: {len(unchecked)} of {len(rows)} checks of the appliance could not run"
            if lost else f"{len(failed)} of {len(rows)} checks of the appliance failed"
            + (f" and {len(unchecked)} could not run" if unchecked else ""))
    lines = "\n".join([f"  - {c.check}: {c.found}. {c.fix}" for c in failed if not (lost and c.check == "SSH")]
                      + ([f"  - could not run: {', '.join(c.check for c in unchecked)}"] if unchecked else []))
    raise VerificationFailed(f"{head}:\n{lines}", failed + unchecked)


__all__ = ["STAGE", "VerifyFacts", "read_facts", "checks", "checks_report", "plan", "reports", "conclude"]
