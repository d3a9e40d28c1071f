"""The rotate stage (a day-2 stage, run only when named): the appliance's secrets changed in place, as the
site's ``rotate`` block asks.

* **The Data Plane API's password.** The appliance holds it as the MD5-crypt line of its user under
  ``userlist controller`` in ``/etc/haproxy/haproxy.cfg`` (``setHAProxyUserPass``, v0.1.10); the Supervisor
  holds it too, and tells it the appliance's Data Plane API on every pass of its load-balancer controller.
  vCenter takes a new one only through ``LoadBalancers.update`` (``PATCH .../clusters/{cluster}/load-balancers
  /{id}`` with an ``HAProxyConfigUpdateSpec``: API 7.0.3.0, vCenter 7.0 U3): on an older vCenter with a
  Supervisor the row is a conflict and nothing changes, since an appliance with a password its Supervisor does
  not know is an appliance the Supervisor no longer programs. The order keeps the time the two differ
  short: the appliance (a dated backup of haproxy.cfg, the line rewritten, dataplaneapi restarted, the new
  password taken), then vCenter, then the check that the Supervisor still programs the appliance: RUNNING,
  and its control-plane servers up behind its virtual IP, on two reads apart (:mod:`.supervisor`). A failure
  anywhere puts both back: the old line from the backup, and vCenter told the old password.
* **The Data Plane API's server certificate**, reissued by the appliance's own ``new-cert.sh`` from the same
  CA (valid 3,650 days): the Supervisor trusts the CA, so vCenter needs no change. The old and the new
  certificate's validity are shown (``rotate-certificate.csv``). A different CA (the site's
  ``haproxy.ca_cert_file``, or the one the Supervisor holds, not being the appliance's) is refused here: a
  new CA means telling vCenter a new chain while the appliance changes, an upgrade-sized change.
* **root's password**, through ``chpasswd`` over SSH, then a new login with it; the old one put back if that
  login fails.

Each new password comes from the variable the ``rotate`` block names, or a prompt, never the site file. The
plan's rows are ok once done: the API takes the new password, root logs in with the new one, the API
presents the certificate this run folder records as reissued (``provided.json``). Afterwards the site's
own variables (``haproxy.dataplane_password_env``, ``root_password_env``) must hold the new passwords.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..errors import ApplianceError, LoginRefused, TkgsError
from ..findings import Finding
from ..planning import Plan, Step
from ..display.tables import Table
from . import stage_named
from .provided import ReissuedCertificate

STAGE = stage_named("rotate")
CERTIFICATE_FILE = "rotate-certificate.csv"
NEW_DATAPLANE = ("the Data Plane API's new password", "rotate.dataplane_password_env")
NEW_ROOT = ("the appliance's new root password", "rotate.root_password_env")


@dataclass
class RotateFacts:
    """What the rotation reads: the appliance's secrets' places, which passwords it takes, the certificate its Data
    Plane API presents, the Supervisor and the vCenter that holds it."""

    asked: object = None  # the site's rotate block (None: nothing asked)
    vcenter: object = None  # VCenterVersion
    supervisor: object = None  # SupervisorNow
    appliance: object = None  # SecretFacts
    dataplane: tuple = ("", 0, "")  # host, port, where they came from
    ca_pem: str = ""  # the appliance's CA as the run holds it (the one vCenter was given)
    ca_source: str = ""
    presented: object = None  # the Certificate the Data Plane API presents
    takes_current: Optional[bool] = None  # the API takes the site's password (None: could not be asked)
    takes_new: Optional[bool] = None  # ... the rotate block's new one
    api_problem: str = ""
    root_with_new: Optional[bool] = None  # root logs in with the new password
    findings: list[Finding] = field(default_factory=list)


# --- read ------------------------------------------------------------------------------------------

def _connect(run, facts: RotateFacts):
    """The appliance over SSH as the site says; when it refuses root's password and a new one is asked for, with
    the new one (a rotation done before)."""
    from ..appliance.ssh import SshRunner

    try:
        return run.connect_appliance()
    except LoginRefused:
        asked = facts.asked
        if asked is None or not asked.root_password_env or run.site.haproxy.ssh_key_file:
            raise
    runner = SshRunner.for_site(run.site, run.network, run.secret(asked.root_password_env, *NEW_ROOT),
                                run.output / "known_hosts").connect()
    run.appliance = runner
    facts.root_with_new = True
    return runner


def _logs_in(run, password: str) -> bool:
    """Whether a new SSH session logs in as the site's user with ``password`` (host key checked)."""
    from ..appliance.ssh import SshRunner

    try:
        SshRunner.for_site(run.site, run.network, password, run.output / "known_hosts").connect().close()
    except LoginRefused:
        return False
    return True


def _takes(run, facts: RotateFacts, password: str) -> Optional[bool]:
    """Whether the Data Plane API takes ``password`` (None, with why in ``api_problem``: it cannot be asked)."""
    from ..appliance.dataplane import get_info

    host, port, _ = facts.dataplane
    try:
        get_info(host, port, run.site.haproxy.dataplane_username, password, facts.ca_pem,
                 trusted_by=facts.ca_source)
    except ApplianceError as exc:
        if "(HTTP 401)" in exc.message:
            return False
        facts.api_problem = exc.message
        return None
    return True


def read_facts(run) -> RotateFacts:
    from ..appliance.ca import Certificate
    from ..appliance.dataplane import presented_certificate
    from ..appliance.rotation import gather_secret_facts
    from .supervisor import read_supervisor

    asked = run.site.rotate
    facts = RotateFacts(asked)
    if asked is None or not (asked.dataplane_password_env or asked.root_password_env or asked.certificate):
        facts.findings.append(Finding.warning(
            "rotate", "the site asks for no rotation, so this stage changes nothing.",
            "name the new passwords' variables in rotate.dataplane_password_env and rotate.root_password_env, "
            "and set rotate.certificate: true to reissue the Data Plane API's certificate."))
        return facts
    facts.vcenter = run.connect_vcenter().version
    facts.supervisor = read_supervisor(run)
    facts.appliance = gather_secret_facts(_connect(run, facts))
    facts.dataplane = run.dataplane()
    ca_pem, facts.ca_source = run.appliance_ca()
    if ca_pem is None:
        facts.findings.append(Finding.error("haproxy.ca_cert_file", f"the Data Plane API cannot be trusted: "
                                                                    f"{facts.ca_source}",
                                            "run the deploy stage into this run folder (it saves the appliance's "
                                            "CA), or give the appliance's CA in haproxy.ca_cert_file."))
        return facts
    facts.ca_pem = ca_pem
    host, port, _ = facts.dataplane
    try:
        facts.presented = Certificate.from_pem(presented_certificate(host, port, ca_pem, trusted_by=facts.ca_source),
                                               f"the certificate the Data Plane API at {host}:{port} presents")
    except ApplianceError as exc:
        facts.api_problem = exc.message
    if asked.dataplane_password_env:
        hp = run.site.haproxy
        facts.takes_current = _takes(run, facts, run.secret(hp.dataplane_password_env, "the Data Plane API password",
                                                            "haproxy.dataplane_password_env"))
        facts.takes_new = _takes(run, facts, run.secret(asked.dataplane_password_env, *NEW_DATAPLANE))
    if asked.root_password_env and facts.root_with_new is None:
        facts.root_with_new = _logs_in(run, run.secret(asked.root_password_env, *NEW_ROOT))
    return facts


# --- plan ------------------------------------------------------------------------------------------

def _certificate_step(run, facts: RotateFacts) -> Step:
    from ..appliance.ca import same_certificate
    from ..appliance.rotation import CA_CRT, CA_KEY, NEW_CERT, SERVER_CRT

    obj = f"the Data Plane API's server certificate ({SERVER_CRT})"
    desired = "reissued from the appliance's own CA by its new-cert.sh (valid 3,650 days); vCenter unchanged"
    held, presented = facts.appliance, facts.presented
    if presented is None:
        return Step.conflict(obj, desired, "not read", f"the certificate could not be read: {facts.api_problem}")
    found = f"{presented.subject}, valid {presented.validity()}, SHA-256 {presented.fingerprint[:23]}…"
    missing = [what for what, there in ((CA_CRT, held.ca_pem), (CA_KEY, held.ca_key_present),
                                         (NEW_CERT, held.new_cert_present)) if not there]
    if missing:
        why = "; ".join(held.problems.values())
        return Step.conflict(obj, desired, found, f"the appliance lacks {', '.join(missing)}, so it cannot issue a "
                                                  f"certificate from its CA" + (f" ({why})." if why else "."))
    upgrade_sized = ("a new CA is an upgrade-sized change, refused here: vCenter must be given the new chain while "
                     "the appliance changes (run the upgrade stage, which carries the CA, or keep this one)")
    site_ca = run.site.haproxy.ca_cert_file
    if site_ca and not same_certificate(_text(site_ca), held.ca_pem):
        return Step.conflict(obj, desired, found, f"haproxy.ca_cert_file ({site_ca}) is not the appliance's CA "
                                                  f"({CA_CRT}): {upgrade_sized}.")
    trusted = facts.supervisor.ca_chain if facts.supervisor is not None else ""
    if trusted and not same_certificate(trusted, held.ca_pem):
        return Step.conflict(obj, desired, found, f"the Supervisor trusts another CA than the appliance's {CA_CRT}, so "
                                                  f"a certificate from it would not be trusted: {upgrade_sized}.")
    reissued = run.provided.get(ReissuedCertificate)
    if reissued is not None and reissued.fingerprint == presented.fingerprint:
        return Step.ok(obj, desired, f"reissued by this run: {found}")
    return Step.change(obj, desired, found, lambda: reissue_certificate(run, facts),
                       why=f"rotate.certificate is true; the new certificate names what first boot's did (the host "
                           f"name, localhost, 127.0.0.1 and the appliance's addresses)")


def _text(path: str) -> str:
    try:
        return open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError):
        return ""


def _dataplane_step(run, facts: RotateFacts) -> Step:
    from ..vsphere.namespace_management import LOAD_BALANCER_UPDATE_API

    user = run.site.haproxy.dataplane_username
    now = facts.supervisor
    balancer = now.load_balancer if now.info is not None else ""
    obj = f"the Data Plane API's password (user {user}: userlist controller in haproxy.cfg" + (
        f"; the Supervisor's load balancer {balancer})" if balancer else ")")
    desired = f"the new one (${facts.asked.dataplane_password_env})" + (
        ", on the appliance and in vCenter, the Supervisor programming the appliance with it" if balancer else "")
    if facts.takes_new:
        return Step.ok(obj, desired, "the Data Plane API takes the new password")
    if facts.takes_current is None or facts.takes_new is None:
        return Step.conflict(obj, desired, "not asked", f"the Data Plane API cannot be asked: {facts.api_problem}")
    if not facts.takes_current:
        return Step.conflict(obj, desired, "takes neither password",
                             f"the Data Plane API refuses both ${run.site.haproxy.dataplane_password_env} "
                             f"(haproxy.dataplane_password_env) and the new one: put the password it takes in "
                             f"haproxy.dataplane_password_env's variable first.")
    found = f"the Data Plane API takes the current password (${run.site.haproxy.dataplane_password_env})"
    if now.info is None:
        return Step.change(obj, desired, found, lambda: rotate_dataplane_password(run, facts),
                           why=f"{now.shown()}: only the appliance is changed")
    if facts.vcenter.api_number < LOAD_BALANCER_UPDATE_API:
        return Step.conflict(obj, desired, found, no_update_call(facts.vcenter, now))
    if now.status != "RUNNING":
        return Step.conflict(obj, desired, found, f"{now.shown()}: rotate once it runs, so that the check after "
                                                  f"the change can tell whether the Supervisor still programs the "
                                                  f"appliance.")
    return Step.change(obj, desired, found, lambda: rotate_dataplane_password(run, facts),
                       why="the appliance first, then vCenter (LoadBalancers.update), then the Supervisor "
                           "checked; both put back on a failure")


def no_update_call(vcenter, now) -> str:
    """Why the Data Plane API's password is not rotated where vCenter has no call to tell the Supervisor."""
    return (f"{vcenter} has no call that gives the Supervisor a new Data Plane API password: LoadBalancers.update "
            f"(PATCH /api/vcenter/namespace-management/clusters/{now.cluster}/load-balancers/{now.load_balancer}, "
            f"HAProxyConfigUpdateSpec) came with API 7.0.3.0 (vCenter 7.0 Update 3); 7.0 Update 2's API only reads a "
            f"load balancer. Changed on the appliance alone, the password would leave the Supervisor with the old one, "
            f"and it would stop programming HAProxy (no new service or cluster would get a virtual IP). Nothing is "
            f"changed: upgrade vCenter to 7.0 Update 3 first, or keep the password.")


def _root_step(run, facts: RotateFacts) -> Step:
    obj = "root's password on the appliance"
    desired = f"the new one (${facts.asked.root_password_env}), a new SSH login with it checked"
    if run.site.haproxy.ssh_user != "root":
        return Step.conflict(obj, desired, "not read", f"haproxy.ssh_user is {run.site.haproxy.ssh_user!r}: chpasswd "
                                                       f"sets root's password only for root; log in as root.")
    if facts.root_with_new:
        return Step.ok(obj, desired, "root logs in with the new password")
    return Step.change(obj, desired, "root logs in with the current password", lambda: rotate_root_password(run, facts),
                       why="chpasswd over SSH, then a new login with the new password; the old one put back otherwise")


def plan(run, facts: RotateFacts) -> Plan:
    result = Plan(STAGE.title, findings=list(facts.findings))
    asked = facts.asked
    if facts.appliance is None or not facts.ca_pem:
        return result
    if asked.certificate:
        result.add(_certificate_step(run, facts))
    if asked.dataplane_password_env:
        result.add(_dataplane_step(run, facts))
    if asked.root_password_env:
        result.add(_root_step(run, facts))
    return result


# --- apply -----------------------------------------------------------------------------------------

def _ops(run):
    from ..appliance.rotation import RotationOps

    return RotationOps(run.connect_appliance())


def _served(run, facts: RotateFacts, password: str, what: str) -> None:
    """The Supervisor still programs the appliance (when there is one), within rotate.supervisor_timeout."""
    from .supervisor import wait_until_served

    if facts.supervisor.info is not None:
        wait_until_served(run, runner=run.connect_appliance, password=password, ca_pem=facts.ca_pem,
                          timeout=facts.asked.supervisor_timeout, what=what, progress=run.progress)


def reissue_certificate(run, facts: RotateFacts) -> None:
    """new-cert.sh from the same CA, the API restarted on it, checked (it presents the new certificate, verified
    by the CA, and the Supervisor still programs the appliance); the old files put back otherwise."""
    from ..appliance.ca import Certificate
    from ..appliance.dataplane import get_info, presented_certificate

    hp, ops, old = run.site.haproxy, _ops(run), facts.presented
    host, port, _ = facts.dataplane
    password = run.secret(hp.dataplane_password_env, "the Data Plane API password", "haproxy.dataplane_password_env")
    addresses = [str(n.appliance.ip) for n in run.network.networks.values() if n.appliance is not None]
    backups = ops.reissue_certificate(hp.hostname, addresses)
    try:
        pem = presented_certificate(host, port, facts.ca_pem, trusted_by=facts.ca_source)
        new = Certificate.from_pem(pem, f"the certificate the Data Plane API at {host}:{port} presents")
        if new.fingerprint == old.fingerprint or not ops.serves(pem):
            raise ApplianceError(f"the Data Plane API at {host}:{port} does not present the reissued certificate")
        get_info(host, port, hp.dataplane_username, password, facts.ca_pem, trusted_by=facts.ca_source)
        _served(run, facts, password, "after the certificate was reissued")
    except TkgsError as exc:
        ops.put_certificate_back(backups)
        raise ApplianceError(f"the reissued certificate did not take: {exc.message.rstrip('.')}. The old certificate "
                             f"and key were put back from {', '.join(backups.values())} and the Data Plane API "
                             f"restarted on them.") from None
    run.provide(ReissuedCertificate(new.fingerprint, new.validity(), old.fingerprint, old.validity()))
    certificate_table(old, new).to_csv(run.output / CERTIFICATE_FILE)
    print(f"The Data Plane API's certificate was reissued from the same CA: valid {new.validity()} (the old one: "
          f"{old.validity()}).", flush=True)


def rotate_dataplane_password(run, facts: RotateFacts) -> None:
    """The appliance (backup, the userlist line, dataplaneapi restarted, the new password taken), then vCenter
    (LoadBalancers.update), then the Supervisor checked; a failure puts both back."""
    from ..appliance.dataplane import get_info
    from ..vsphere.namespace_management import NamespaceManagement, load_balancer_update_body

    hp, ops, now = run.site.haproxy, _ops(run), facts.supervisor
    host, port, _ = facts.dataplane
    current = run.secret(hp.dataplane_password_env, "the Data Plane API password", "haproxy.dataplane_password_env")
    new = run.secret(facts.asked.dataplane_password_env, *NEW_DATAPLANE)
    vcenter = NamespaceManagement(run.require_vcenter().rest)
    backup = ops.set_dataplane_password(hp.dataplane_username, new)
    told = False
    try:
        ops.restart_dataplane()
        get_info(host, port, hp.dataplane_username, new, facts.ca_pem, trusted_by=facts.ca_source)
        if now.info is not None:
            vcenter.update_load_balancer(now.cluster, now.load_balancer, load_balancer_update_body(password=new))
            told = True
        _served(run, facts, new, "after the Data Plane API's password was changed")
    except TkgsError as exc:
        put_back: list[str] = []
        try:
            ops.put_dataplane_password_back(hp.dataplane_username, backup)
            put_back.append(f"the appliance's userlist line from {backup}, dataplaneapi restarted")
            if told:
                vcenter.update_load_balancer(now.cluster, now.load_balancer,
                                             load_balancer_update_body(password=current))
                put_back.append("vCenter told the old password again")
            _served(run, facts, current, "after the old Data Plane API password was put back")
        except TkgsError as failed:
            done = f"what was put back: {'; '.join(put_back)}" if put_back else "nothing could be put back"
            vcenter_holds = "the new" if told and len(put_back) < 2 else "the old"
            raise exc.reworded(
                f"the Data Plane API's password was not rotated: {exc.message.rstrip('.')}. Putting it back failed "
                f"too: {failed.message.rstrip('.')} ({done}; the old line is in {backup} on the appliance; vCenter "
                f"holds {vcenter_holds} password).") from None
        raise exc.reworded(f"the Data Plane API's password was not rotated: {exc.message.rstrip('.')}. It was put back "
                           f"({'; '.join(put_back)}), and the Supervisor programs the appliance with the old password "
                           f"again.") from None
    print(f"The Data Plane API takes the new password" + (f", and the Supervisor of {now.cluster_name} programs the "
                                                           f"appliance with it" if now.info is not None else "")
          + f": put it in ${hp.dataplane_password_env} (haproxy.dataplane_password_env) for the stages after.",
          flush=True)


def rotate_root_password(run, facts: RotateFacts) -> None:
    """chpasswd over the open session, then a new login with the new password; the old one put back otherwise."""
    hp, ops = run.site.haproxy, _ops(run)
    new = run.secret(facts.asked.root_password_env, *NEW_ROOT)
    ops.set_root_password(new)
    if _logs_in(run, new):
        print(f"root logs in with the new password: put it in ${hp.root_password_env} (haproxy.root_password_env) "
              f"for the stages after.", flush=True)
        return
    if hp.ssh_key_file:
        raise ApplianceError("root's new password was set, but a login with it is refused, and the old one is not "
                             "known here (the site logs in with haproxy.ssh_key_file): set root's password on the "
                             "appliance's console.")
    ops.set_root_password(run.secret(hp.root_password_env, "the appliance's root password",
                                     "haproxy.root_password_env"))
    raise ApplianceError("root's new password was set, but a login with it was refused; the old one was put back.")


# --- reports ---------------------------------------------------------------------------------------

_CERTIFICATE_COLUMNS = ["certificate", "subject", "issuer", "valid", "SHA-256 fingerprint", "signature"]


def _certificate_row(which: str, cert) -> dict:
    return {"certificate": which, "subject": cert.subject, "issuer": cert.issuer, "valid": cert.validity(),
            "SHA-256 fingerprint": cert.fingerprint, "signature": cert.signature}


def certificate_table(old, new) -> Table:
    """The certificate replaced and the one that replaced it: names, validity, fingerprint."""
    return Table([_certificate_row("replaced", old), _certificate_row("now", new)], _CERTIFICATE_COLUMNS)


def reports(run, facts: RotateFacts) -> dict[str, Table]:
    if facts.appliance is None:
        return {}
    reissued = run.provided.get(ReissuedCertificate)
    rows = [_certificate_row("now", facts.presented)] if facts.presented is not None else []
    if rows and reissued is not None and reissued.fingerprint == facts.presented.fingerprint:
        rows.insert(0, {"certificate": "replaced (by this run)", "subject": "", "issuer": "",
                        "valid": reissued.replaced_valid, "SHA-256 fingerprint": reissued.replaced, "signature": ""})
    table = Table(rows, _CERTIFICATE_COLUMNS, empty=f"The certificate could not be read: {facts.api_problem}")
    now, vcenter = facts.supervisor, facts.vcenter
    supervisor = Table([{"what": "vCenter", "value": str(vcenter)},
                        {"what": "the Supervisor", "value": now.shown()}], ["what", "value"])
    return {"the Data Plane API's certificate": table, "the Supervisor, as vCenter reports it": supervisor}


__all__ = ["STAGE", "RotateFacts", "read_facts", "plan", "reports", "no_update_call", "CERTIFICATE_FILE"]
