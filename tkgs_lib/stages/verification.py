"""The appliance checked as the verify stage checks it, for every stage that must prove an appliance works: verify
itself, and an upgrade's new release before the old one is let go. The Data Plane API's ``/v2/info`` over HTTPS,
trusted through the appliance's CA, and over SSH, host key checked, each of the appliance's facts
(:mod:`tkgs_lib.appliance.checks`). Not a stage: the stages that verify share it, as they share
:mod:`.supervisor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..appliance.checks import ApplianceFacts, Check, appliance_checks, gather_appliance_facts
from ..appliance.dataplane import DataPlaneInfo, get_info
from ..appliance.releases import ReleaseChoice
from ..errors import ApplianceError

__all__ = ["VerifyFacts", "read_facts", "checks"]


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
