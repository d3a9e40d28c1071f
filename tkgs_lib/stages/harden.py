"""Stage harden: what the appliance's own first boot leaves readable, found and taken away.

Read at the release's tag (v0.1.10 and v0.2.0, ``ovf-to-cloud-init.sh`` and the unit that runs it;
:mod:`tkgs_lib.appliance.hardening`), each finding with where it was read:

* over SSH, ``/var/log/vmware/ovf-to-cloud-init.log``: the script's ``set -x`` traced the OVF environment,
  root's and the Data Plane API's passwords in clear, their MD5-crypt hashes (root's with the constant salt
  ``SaltSalt``), the base64 cloud-config holding root's, and a CA key the site gave; and
  ``/var/lib/vmware/encoded_userdata.txt``, that cloud-config kept world-readable;
* from vCenter, the VM's configuration: the guestinfo ``userdata`` the script published (root's hash, which
  anyone who reads the VM's configuration can crack offline), and the vApp properties holding the
  passwords (and the CA's key);
* over SSH, sshd's settings: root may log in with a password (``appliance.permit_root_login``, the article's
  "for now");
* the appliance's CA (the run folder's, the VM's, or the site's): signed with SHA-1 by ``new-ca.sh``
  (``default_md = sha1``), which current TLS clients are dropping: reported, with the fix, a CA of the
  site's own (``haproxy.ca_cert_file``).

Apply rewrites the log with each trace masked (only if it is still what was read), removes
``encoded_userdata.txt``, clears in vCenter what the appliance no longer needs, puts the site's SSH key
(``haproxy.ssh_key_file``) in root's ``authorized_keys`` and, once a login with that key alone has worked,
turns root's password login off. The checks (``harden-checks.csv``) read it all again; a reboot of the
appliance runs the script's other branch only, which adds no secret.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Optional

from ..appliance.checks import Check, checks_table
from ..appliance.hardening import (AUTHORIZED_KEYS, ENCODED_USERDATA, FACTS, FIRST_BOOT_DONE, LOG, SECRET_PROPERTIES,
                                   HardeningOps, KeptFile, LogText, SshdSettings, Trace, first_boot_traces,
                                   masked_log)
from ..credentials import MASK, secret_values
from ..display.tables import Sentence, Table
from ..errors import ApplianceError, VerificationFailed
from ..findings import Finding
from ..planning import Plan, Step, VALUES_ONLY
from . import stage_named

STAGE = stage_named("harden")
USERDATA_KEYS = ("guestinfo.userdata", "guestinfo.userdata.encoding")  # what publishUserdata sets (ovf-rpctool set)
PROHIBIT = ("prohibit-password", "without-password", "forced-commands-only", "no")


@dataclass
class HardenFacts:
    """What the appliance and vCenter hold of the first boot's secrets, and how root may log in."""

    ssh: str = ""  # how the SSH session was made, host key check included
    log: Optional[LogText] = None  # None: not read (read_errors says why) or no such log
    traces: list[Trace] = field(default_factory=list)
    encoded_userdata: Optional[KeptFile] = None
    first_boot_done: Optional[bool] = None
    sshd: Optional[SshdSettings] = None
    authorized_keys: tuple[str, ...] = ()
    read_errors: dict[str, str] = field(default_factory=dict)  # fact → why it was not read
    key_line: str = ""  # the site's public key, as root's authorized_keys will hold it
    key_fingerprint: str = ""
    key_problem: str = ""
    vm_name: str = ""
    vm_moid: str = ""
    vm_problem: str = ""
    userdata: bool = False  # the VM holds guestinfo.userdata
    secret_properties: dict[str, str] = field(default_factory=dict)  # property → where vCenter holds a value of it
    ca_subject: str = ""
    ca_source: str = ""
    ca_hash: str = ""  # the hash the CA is signed with: sha1, sha256...

    @property
    def key_in_place(self) -> bool:
        return bool(self.key_line) and " ".join(self.key_line.split()[:2]) in self.authorized_keys


# --- read ------------------------------------------------------------------------------------------

def read_facts(run) -> HardenFacts:
    """Over SSH, the log, the kept userdata, the marker, sshd's settings and root's keys (one exec); from
    vCenter, the VM's guestinfo and vApp properties; the appliance's CA; the site's key."""
    from ..appliance.commands import gather_many

    facts = HardenFacts()
    hp = run.site.haproxy
    if hp.ssh_key_file:
        from ..appliance.ssh import public_key_line

        try:
            facts.key_line, facts.key_fingerprint = public_key_line(hp.ssh_key_file, f"tkgs-runbook {run.site.site}")
        except ApplianceError as exc:
            facts.key_problem = exc.message
    try:
        ssh = run.connect_appliance()
        facts.ssh = ssh.describe()
        values = gather_many(ssh, FACTS)
    except ApplianceError as exc:
        facts.read_errors["ssh"] = exc.message
        values = {}
    for name, value in values.items():
        if isinstance(value, ApplianceError):
            facts.read_errors[name] = value.message
        elif name == "log":
            facts.log = value if value.text else None
        else:
            setattr(facts, name, value)
    if facts.log is not None:
        facts.traces = first_boot_traces(facts.log, secret_values(run.site))
    _read_vm(run, facts)
    _read_ca(run, facts)
    return facts


def _read_vm(run, facts: HardenFacts) -> None:
    from ..vsphere.vm import read_vms

    facts.vm_name = run.site.haproxy.vm_name
    run.connect_vcenter()
    vms = read_vms(run.inventory, facts.vm_name)
    if len(vms) != 1:
        facts.vm_problem = f"{'no' if not vms else len(vms)} VM named '{facts.vm_name}' in vCenter"
        return
    vm = vms[0]
    facts.vm_moid = vm.moid
    facts.userdata = bool(vm.extra_config.get(USERDATA_KEYS[0]))
    for key in SECRET_PROPERTIES:
        if (vm.properties or {}).get(key):
            facts.secret_properties[key] = "its vApp properties"
        elif vm.extra_config.get(key):  # where a vCenter without vApp config for the VM keeps the value
            facts.secret_properties[key] = "its advanced settings (extraConfig)"


def _read_ca(run, facts: HardenFacts) -> None:
    from cryptography import x509

    pem, source = run.appliance_ca()
    facts.ca_source = source
    if pem is None:
        return
    cert = x509.load_pem_x509_certificate(pem.encode())
    facts.ca_subject = cert.subject.rfc4514_string()
    facts.ca_hash = cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else "none"


# --- plan ------------------------------------------------------------------------------------------

def _traces_found(facts: HardenFacts) -> str:
    kinds = list(dict.fromkeys(what for t in facts.traces for what in t.holds))
    lines = ", ".join(t.lines for t in facts.traces)
    return (f"read over SSH: {len(facts.traces)} traced commands hold a secret (lines {lines}): "
            f"{'; '.join(kinds)}")


def plan_harden(site, facts: HardenFacts, ops: "HardenOps" = VALUES_ONLY) -> Plan:
    """One row per thing the first boot left readable; warnings for what only the site can fix."""
    plan = Plan(STAGE.title)
    for name, why in facts.read_errors.items():
        plan.findings.append(Finding.error("haproxy", f"{FACTS[name].name if name in FACTS else 'SSH'} could not be "
                                                      f"read: {why}", "see the sentence; then run the stage again."))
    if "ssh" in facts.read_errors:
        return plan
    obj = f"traces in {LOG}"
    desired = "no password, hash or key in it"
    if facts.traces:
        log, traces = facts.log, facts.traces
        plan.add(Step.change(obj, desired, _traces_found(facts), lambda: ops.rewrite_log(log, masked_log(log, traces)),
                             why="ovf-to-cloud-init.sh runs under set -x and its unit tees it into this log (v0.1.10, "
                                 "v0.2.0): each such command is replaced by one line, masked, saying what it held"))
    elif "log" not in facts.read_errors:
        plan.add(Step.ok(obj, desired, f"read over SSH: {facts.log.lines} lines, none holds a secret"
                         if facts.log else "read over SSH: no such log"))
    obj = f"{ENCODED_USERDATA}"
    if facts.encoded_userdata is None and "encoded_userdata" not in facts.read_errors:
        plan.add(Step.ok(obj, "absent", "read over SSH: absent"))
    elif facts.encoded_userdata is not None:
        plan.add(Step.change(obj, "absent", f"read over SSH: there, mode {facts.encoded_userdata.mode}: the "
                                            f"cloud-config with root's MD5-crypt hash, base64",
                             ops.remove_encoded_userdata,
                             why="publishUserdata keeps it and nothing reads it again: every later boot reads "
                                 "encoded_metadata.txt only"))
    _plan_vcenter(plan, facts, ops)
    _plan_login(plan, site, facts, ops)
    _plan_ca(plan, site, facts)
    return plan


def _plan_vcenter(plan: Plan, facts: HardenFacts, ops) -> None:
    if facts.vm_problem:
        plan.findings.append(Finding.error("haproxy.vm_name", f"{facts.vm_problem}, so what vCenter holds of the "
                                                              f"appliance cannot be read.",
                                           "deploy the appliance (the deploy stage), or fix haproxy.vm_name."))
        return
    where = f"read from vCenter: VM {facts.vm_name}'s configuration"
    obj = f"guestinfo.userdata of VM {facts.vm_name}"
    if facts.userdata:
        # After its first boot the appliance needs it no more: cloud-init ran its per-instance chpasswd and
        # runcmd then, and ovf-to-cloud-init.sh never reads it again (v0.1.10, v0.2.0); cloud-init's datasource
        # check (usr/bin/dscheck_VMwareGuestInfo.sh) still finds the ovfenv or encoded_metadata.txt.
        plan.add(Step.change(obj, "not set", f"{where}: the cloud-config with root's password as MD5-crypt, salt "
                                             f"SaltSalt (anyone who reads the VM's configuration can crack it)",
                             lambda: ops.vcenter_clear(list(USERDATA_KEYS)),
                             why="publishUserdata published it at the first boot; the appliance reads it no more"))
    else:
        plan.add(Step.ok(obj, "not set", f"{where}: not set"))
    for key, what in SECRET_PROPERTIES.items():
        obj = f"vApp property {key} of VM {facts.vm_name}"
        if key not in facts.secret_properties:
            plan.add(Step.ok(obj, "empty", f"{where}: empty"))
        elif facts.first_boot_done is False:
            plan.add(Step.conflict(obj, "empty", f"{where}: {what}, in {facts.secret_properties[key]}",
                                   f"{FIRST_BOOT_DONE} is missing on the appliance, so its next boot runs the first "
                                   f"boot again and reads this value: emptied, root's password would be hashed "
                                   f"from nothing and the Data Plane API's would fall back to 'haproxy'. Find why "
                                   f"the marker is gone before running this stage again."))
        else:
            # ovf-to-cloud-init.sh reads these only in its first-boot branch (`if [ ! -f
            # /var/lib/vmware/.ovf_to_cloud_init.done ]`, v0.1.10 and v0.2.0); the marker stays, so a later boot
            # never reads an emptied value (were it removed, an empty loadbalance.haproxy_pwd would fall back to
            # "haproxy" in setHAProxyUserPass).
            plan.add(Step.change(obj, "empty", f"{where}: {what}, in {facts.secret_properties[key]}",
                                 lambda k=key: ops.vcenter_clear([k], vapp=True),
                                 why=f"the first boot read it; every later boot skips the first-boot branch while "
                                     f"{FIRST_BOOT_DONE} is there"))


def _plan_login(plan: Plan, site, facts: HardenFacts, ops) -> None:
    hp = site.haproxy
    if facts.key_problem:
        plan.findings.append(Finding.error("haproxy.ssh_key_file", facts.key_problem, "see the sentence."))
        return
    if facts.sshd is None:
        return
    password_login = facts.sshd.password_allowed
    if not facts.key_line:
        if password_login:
            plan.findings.append(Finding.warning(
                "haproxy.ssh_key_file", "root may log in over SSH with a password (appliance.permit_root_login, the "
                                        "article's \"for now\"; read over SSH: sshd -T says permitrootlogin yes), and "
                                        "the site names no key to put in its place.",
                "create a key (ssh-keygen -t ed25519 -N ''), name its private file in haproxy.ssh_key_file and run "
                "this stage again: it puts the key in place and, once a login with it works, turns password "
                "login off."))
        return
    obj = f"the site's key in {AUTHORIZED_KEYS}"
    desired = f"{facts.key_line.split()[0]} {facts.key_fingerprint} (haproxy.ssh_key_file)"
    if facts.key_in_place:
        plan.add(Step.ok(obj, desired, "read over SSH: there"))
    else:
        line = facts.key_line
        plan.add(Step.create(obj, desired, lambda: ops.authorize_key(line),
                             found=f"read over SSH: {len(facts.authorized_keys)} other key(s)"))
    obj = f"root's password login over SSH ({hp.ssh_user}@ the appliance)"
    desired = "off (PermitRootLogin prohibit-password), once a login with the site's key alone has worked"
    found = (f"read over SSH (sshd -T): permitrootlogin {facts.sshd.permit_root_login}, passwordauthentication "
             f"{facts.sshd.password_authentication}")
    if password_login:
        plan.add(Step.change(obj, desired, found, ops.no_password_login,
                             why="permitRootViaSSH set PermitRootLogin from appliance.permit_root_login (the "
                                 "article's \"for now\")"))
    else:
        plan.add(Step.ok(obj, desired, found))


def _plan_ca(plan: Plan, site, facts: HardenFacts) -> None:
    if facts.ca_hash != "sha1":
        return
    own = bool(site.haproxy.ca_cert_file)
    plan.findings.append(Finding.warning(
        "haproxy.ca_cert_file",
        f"the appliance's CA ({facts.ca_subject}; {facts.ca_source}) is signed with SHA-1 (sha1WithRSAEncryption)"
        + ("" if own else ": the CA its first boot makes with new-ca.sh (default_md = sha1 at v0.1.10 and v0.2.0)")
        + ", which current TLS clients are dropping.",
        ("make the site's CA again signed with SHA-256 or stronger" if own else
         "give the appliance a CA of the site's own, signed with SHA-256: set haproxy.ca_cert_file and "
         "haproxy.ca_key_file") + ", deploy the appliance again with it (haproxy.replace_existing: true) and give "
                                  "Workload Management the new CA chain."))


def plan(run, facts: HardenFacts) -> Plan:
    return plan_harden(run.site, facts, run.operations(HardenOps))


# --- apply -----------------------------------------------------------------------------------------

class HardenOps:
    """The stage's changes: the appliance's through :class:`HardeningOps`, vCenter's through the VM's."""

    @classmethod
    def for_run(cls, run) -> Optional["HardenOps"]:
        return cls(run) if run.appliance is not None and run.vcenter is not None else None

    def __init__(self, run) -> None:
        self.run = run
        self.appliance = HardeningOps(run.appliance)

    def rewrite_log(self, read: LogText, masked: str) -> None:
        self.appliance.rewrite_log(read, masked)

    def remove_encoded_userdata(self) -> None:
        self.appliance.remove_encoded_userdata()

    def authorize_key(self, line: str) -> None:
        self.appliance.authorize_key(line)

    def vcenter_clear(self, keys: list[str], vapp: bool = False) -> None:
        """Empty ``keys`` where vCenter holds them for the VM: its vApp property values, its advanced settings
        (an advanced setting set to "" is removed)."""
        from ..vsphere.vm import VmOps, read_vms

        ops = VmOps(self.run.require_vcenter(), self.run.inventory, progress=self.run.progress)
        (vm,) = read_vms(self.run.inventory, self.run.site.haproxy.vm_name)
        if vapp and vm.properties is not None:
            ops.clear_vapp_values(vm.moid, [k for k in keys if vm.properties.get(k)])
        for key in keys:
            if vm.extra_config.get(key):
                ops.set_advanced(vm.moid, key, "")

    def no_password_login(self) -> None:
        """A login with the site's key alone first (host key checked as every session's); only when it works
        is root's password login turned off."""
        from ..appliance.ssh import SshRunner

        run, hp = self.run, self.run.site.haproxy
        try:
            with SshRunner.for_site(run.site, run.network, None, run.output / "known_hosts") as proof:
                proof.run("true")
        except ApplianceError as exc:
            raise ApplianceError(
                f"root's password login over SSH was left on: the site's key (haproxy.ssh_key_file, {hp.ssh_key_file}) "
                f"is in {AUTHORIZED_KEYS}, but a login with it alone did not work ({exc.message.rstrip('.')}). Check "
                f"sshd's PubkeyAuthentication and AuthorizedKeysFile on the appliance (sshd -T shows them), then run "
                f"this stage again.") from None
        self.appliance.no_password_login_for_root(f"{datetime.datetime.now():%Y%m%d-%H%M%S}")


# --- reports and checks ----------------------------------------------------------------------------

def traces_table(facts: HardenFacts) -> Table:
    """Each traced command of the log that holds a secret: its lines, what it holds, its first line masked."""
    rows = [{"lines": t.lines, "holds": "; ".join(t.holds), "shown masked": t.shown} for t in facts.traces]
    return Table(rows, ["lines", "holds", "shown masked"],
                 empty=f"No traced command of {LOG} holds a password, a hash or a key.")


def checks(run, facts: HardenFacts) -> list[Check]:
    """One row per thing the first boot left readable, as read now; the CA and a site without a key warn."""
    if "ssh" in facts.read_errors:
        return [Check("SSH", "a session to the appliance", facts.read_errors["ssh"], "failed",
                      "see the sentence: it names the likely cause.")]
    rows = [Check(f"traces in {LOG}", "none holds a password, a hash or a key",
                  _traces_found(facts) if facts.traces else "none", "failed" if facts.traces else "ok",
                  "run this stage with apply: it masks them" if facts.traces else ""),
            Check(ENCODED_USERDATA, "absent", "there" if facts.encoded_userdata else "absent",
                  "failed" if facts.encoded_userdata else "ok",
                  "run this stage with apply: it removes it" if facts.encoded_userdata else ""),
            Check(FIRST_BOOT_DONE, "there (the first boot never runs again)",
                  {True: "there", False: "missing", None: "not read"}[facts.first_boot_done],
                  "ok" if facts.first_boot_done else "failed", "" if facts.first_boot_done else
                  "with the marker gone the next boot runs the first boot again: find out why")]
    if not facts.vm_problem:
        rows.append(Check(f"guestinfo.userdata of VM {facts.vm_name}", "not set", "set" if facts.userdata else
                          "not set", "failed" if facts.userdata else "ok",
                          "run this stage with apply: it clears it" if facts.userdata else ""))
        rows += [Check(f"vApp property {key} of VM {facts.vm_name}", "empty",
                       f"{MASK} in {facts.secret_properties[key]}" if key in facts.secret_properties else "empty",
                       "failed" if key in facts.secret_properties else "ok",
                       "run this stage with apply: it empties it" if key in facts.secret_properties else "")
                 for key in SECRET_PROPERTIES]
    if facts.sshd is not None:
        key = ("the site's key is there" if facts.key_in_place else
               "no key named (haproxy.ssh_key_file)" if not facts.key_line else "the site's key is not there")
        off = facts.sshd.permit_root_login in PROHIBIT or facts.sshd.password_authentication == "no"
        rows.append(Check("root's SSH login", "by the site's key only (PermitRootLogin prohibit-password)",
                          f"permitrootlogin {facts.sshd.permit_root_login}; {key}",
                          "ok" if off and facts.key_in_place else "warning" if not facts.key_line else "failed",
                          "" if off and facts.key_in_place else
                          "name a key in haproxy.ssh_key_file and run this stage with apply" if not facts.key_line
                          else "run this stage with apply"))
    if facts.ca_hash:
        rows.append(Check("the appliance's CA", "signed with SHA-256 or stronger",
                          f"{facts.ca_hash.upper()}: {facts.ca_subject} ({facts.ca_source})",
                          "warning" if facts.ca_hash in ("sha1", "md5") else "ok",
                          "a CA of the site's own, signed with SHA-256 (haproxy.ca_cert_file), and the appliance "
                          "deployed again" if facts.ca_hash in ("sha1", "md5") else ""))
    return rows


def reports(run, facts: HardenFacts) -> dict[str, Table]:
    return {"the first boot's traces that hold a secret, masked": traces_table(facts),
            "what the first boot left readable, checked": checks_table(checks(run, facts))}


def conclude(run, applied: bool) -> Sentence:
    """Save the checks of what is there now (harden-checks.csv); after an apply, raise VerificationFailed
    naming each that failed (a warning, the CA's or a missing key's, is said, not failed)."""
    rows = checks(run, run.latest_read())
    checks_table(rows).to_csv(run.output / STAGE.checks_file)
    failed = [c for c in rows if c.failed]
    warned = [c for c in rows if c.status == "warning"]
    said = "" if not warned else " Warnings: " + "; ".join(f"{c.check}: {c.found}" for c in warned) + "."
    if not failed:
        return Sentence(f"None of the {len(rows)} checks of what the first boot left readable failed.{said}")
    if not applied:
        return Sentence(f"{len(failed)} of {len(rows)} checks fail until this stage is applied: "
                        f"{', '.join(c.check for c in failed)}.{said}")
    lines = "\n".join(f"  - {c.check}: {c.found}. {c.fix}" for c in failed)
    raise VerificationFailed(f"{len(failed)} of {len(rows)} checks of what the first boot left readable failed:\n"
                             f"{lines}", failed)


__all__ = ["STAGE", "HardenFacts", "HardenOps", "read_facts", "plan", "plan_harden", "reports", "checks",
           "conclude"]
