"""Stage 4, verify the HAProxy appliance: the article's "Checking HA Proxy", read-only.

The Data Plane API's ``/v2/info`` over HTTPS, trusted through the appliance's CA (the one the
deploy stage saved in the run folder, else the one the VM publishes, read from vCenter, else the
site's own ``haproxy.ca_cert_file``: the report says which); then over SSH, host key checked,
each of the appliance's facts (:mod:`tkgs_lib.appliance.checks`): its interfaces, failed units,
``anyip-routes.service`` and its file and routes, the route tables and rules, each gateway from
its own interface. One row per check, each failure with its likely cause and fix. Nothing on
the appliance is changed: repair is the next stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..appliance.checks import ApplianceFacts, Check, appliance_checks, checks_table, gather_appliance_facts
from ..appliance.dataplane import DataPlaneInfo, get_info
from ..appliance.releases import ReleaseChoice
from ..errors import ApplianceError, VerificationFailed
from ..findings import Finding
from ..planning import Plan
from ..display.tables import Sentence, Table
from . import stage_named

STAGE = stage_named("verify")


@dataclass
class VerifyFacts:
    trusted_by: str  # which CA the Data Plane API was checked against, or why none
    dataplane: Optional[DataPlaneInfo] = None
    dataplane_error: str = ""
    ssh: str = ""  # how the SSH session was made, host key check included
    ssh_error: str = ""
    appliance: Optional[ApplianceFacts] = None
    notes: list[str] = field(default_factory=list)
    release: Optional[ReleaseChoice] = None  # the release the appliance's checks judge it by


# --- read -----------------------------------------------------------------------------------------

def read_facts(run) -> VerifyFacts:
    """The Data Plane API's answer and the appliance's facts, read side by side: on a link where the
    round trip rules, the read costs the longer of the two (about 3 round trips: TCP, TLS and the
    request for the API; the SSH session's one exec for the facts), not their sum."""
    from concurrent.futures import ThreadPoolExecutor

    hp = run.site.haproxy
    host, port, _ = run.dataplane()
    ca_pem, trusted_by = run.appliance_ca()
    facts = VerifyFacts(trusted_by, release=run.appliance_release)
    # Every password first, in this thread: a prompt belongs to the person's cell, never to a worker.
    password = None if ca_pem is None else run.secret(hp.dataplane_password_env, "the Data Plane API password",
                                                        "haproxy.dataplane_password_env")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataplane") as pool:
        answer = None if ca_pem is None else pool.submit(get_info, host, port,
                                                         hp.dataplane_username, password, ca_pem,
                                                         trusted_by=trusted_by)
        try:
            ssh = run.connect_appliance()
            facts.ssh = ssh.describe()
            facts.appliance = gather_appliance_facts(ssh, run.network, facts.release)
        except ApplianceError as exc:
            facts.ssh_error = exc.message
        if answer is None:
            facts.dataplane_error = trusted_by
        else:
            try:
                facts.dataplane = answer.result()
            except ApplianceError as exc:
                facts.dataplane_error = exc.message
    return facts


# --- the checks -----------------------------------------------------------------------------------

def checks(run, facts: VerifyFacts) -> list[Check]:
    hp = run.site.haproxy
    management = run.network.networks["management"].appliance.ip
    host, port, _ = run.dataplane()
    where = f"https://{host}:{port}/v2/info"
    if facts.dataplane is not None:
        info = facts.dataplane
        rows = [Check("Data Plane API", f"{where} answers, TLS trusted through the appliance's CA",
                      f"version {info.version}, built {info.build_date}; TLS verified against {facts.trusted_by}",
                      "ok")]
    else:
        rows = [Check("Data Plane API", f"{where} answers, TLS trusted through the appliance's CA",
                      facts.dataplane_error, "failed", "see the sentence: it names the likely cause.")]
    ssh = f"{hp.ssh_user}@{management}, host key checked"
    if facts.appliance is None:
        rows.append(Check("SSH", ssh, facts.ssh_error, "failed",
                          "without SSH the appliance's own checks cannot run: the sentence names the likely cause."))
        return rows
    if facts.appliance.lost:
        rows.append(Check("SSH", ssh, f"{facts.ssh}; then {facts.appliance.lost}", "failed",
                          "the connection to the appliance dropped while its facts were read, so none of its checks "
                          "could run: check the management network's link and run the verify stage again."))
    else:
        rows.append(Check("SSH", ssh, facts.ssh, "ok"))
    return rows + appliance_checks(run.network, facts.appliance, facts.release)


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
