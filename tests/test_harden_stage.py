"""The harden stage: what the appliance's own first boot leaves readable, found, taken away, and gone for good.

End to end in a lab of its own: the vCenter simulator, its first-boot player booting a simulated appliance
from what vCenter holds (so the VM's guestinfo userdata is what the appliance's publishUserdata published),
prepare and deploy with apply, then the harden stage. Its parser of the first boot's log is tested on the
real script's logs, recorded at v0.1.10 and v0.2.0 (tests/recorded, how: record_first_boot.py there), and
the simulated appliance's trace is compared with them.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from appliance_fixtures import DATAPLANE_PASSWORD, ROOT_PASSWORD, require_appliance_simulator
from tkgs_lib.appliance.hardening import LogText, first_boot_traces, masked_log
from tkgs_lib.credentials import scan_for_secrets
from tkgs_lib.errors import LoginRefused
from tkgs_lib.site import load_site
from tkgs_lib.stages import harden
from tkgs_lib.stages.flow import StageRun

RECORDED = Path(__file__).resolve().parent / "recorded"
SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
VCENTER_PASSWORD = "canary-vcenter-harden-5c1"
ENV = {"TKGS_VCENTER_PASSWORD": VCENTER_PASSWORD, "TKGS_HAPROXY_ROOT_PASSWORD": ROOT_PASSWORD,
       "TKGS_HAPROXY_DATAPLANE_PASSWORD": DATAPLANE_PASSWORD}
pytestmark = [pytest.mark.slow, pytest.mark.vcsim]


# --- the parser, on the real script's logs -----------------------------------------------------------

def recorded(name: str) -> tuple[str, dict]:
    return (RECORDED / f"{name}.log").read_text(), json.loads((RECORDED / f"{name}.json").read_text())


def md5_crypt(password: str, salt: str) -> str:
    return subprocess.run(["openssl", "passwd", "-1", "-salt", salt, password], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("name", ["ovf-to-cloud-init-v0.1.10", "ovf-to-cloud-init-v0.2.0-own-ca"])
def test_every_secret_the_real_first_boot_traces_is_found_and_masked(name):
    text, props = recorded(name)
    root, dataplane, key = props["appliance.root_pwd"], props["loadbalance.haproxy_pwd"], props["appliance.ca_cert_key"]
    traces = first_boot_traces(LogText(text))  # learned from the log alone: no password given
    shown = "\n".join(t.shown for t in traces)
    held = {what for t in traces for what in t.holds}
    assert {"root's password as MD5-crypt with the constant salt SaltSalt",
            "the cloud-config with root's MD5-crypt hash, base64"} <= held
    assert any(what.startswith("the appliance's root password (appliance.root_pwd)") for what in held)
    assert any(what.startswith("the Data Plane API password (loadbalance.haproxy_pwd)") for what in held)
    masked = masked_log(LogText(text), traces)
    hashed = md5_crypt(root, "SaltSalt")
    dp_hash = re.search(r"\$1\$(?!SaltSalt)[./0-9A-Za-z]{0,8}\$[./0-9A-Za-z]{22}", text).group(0)
    userdata = re.search(r"^\+ encoded_userdata='([^']*)'", text, re.M).group(1)
    forms = [root, root.replace("'", "'\\''"), "&amp;&lt;", dataplane, hashed, hashed.replace("$", "\\$"), dp_hash,
             *userdata.splitlines()]
    if key:
        forms += [key, *(part for part in key.split() if len(part) > 40)]
    assert all(value in text for value in (root.replace("'", "'\\''"), dataplane, hashed, dp_hash, userdata))
    for form in forms:  # each was there to find; none is shown, none is left in the rewritten log
        assert form not in shown and form not in masked, form
    assert first_boot_traces(LogText(masked)) == []
    # What holds no secret stays as it was: the network lines, the unit's own words.
    kept = [line for line in text.splitlines() if "10.64.8.10/21" in line and "oe:" not in line]
    assert kept and all(line in masked.splitlines() for line in kept)


@pytest.mark.parametrize("name, release", [("ovf-to-cloud-init-v0.1.10", "v0.1.10"),
                                           ("ovf-to-cloud-init-v0.2.0-own-ca", "v0.2.0")])
def test_the_simulated_first_boot_traces_what_the_real_one_traces(name, release):
    """The simulated appliance's log, from its played script, against the real script's at the tag: the same
    lines but those of publishMetadata (cloud-init's network metadata, not played) and the Data Plane API
    hash's random salt."""
    from tkgs_simulators.appliance.ovf_environment import ovf_environment
    from tkgs_simulators.appliance.scripts import played
    from tkgs_simulators.appliance.scripts.ovf_to_cloud_init import LOG, SSHD_CONFIG

    text, props = recorded(name)
    nics = {"management": "00:50:56:aa:bb:01", "workload": "00:50:56:aa:bb:02", "frontend": "00:50:56:aa:bb:03"}
    script = played(release).first_boot(props, nics, ovfenv=ovf_environment(props, nics),
                                        image={SSHD_CONFIG: "PermitRootLogin no\n#ListenAddress 0.0.0.0\n"})
    simulated = script.first_boot()[LOG]
    real = text[:text.index("+ publishMetadata\n")] + text[text.index("+ permitRootViaSSH\n"):]
    salted = re.compile(r"\$1\$(?!SaltSalt)[./0-9A-Za-z]{0,8}\$[./0-9A-Za-z]{22}")  # a random salt, its hash
    assert salted.sub("$1$salt$hash", simulated) == salted.sub("$1$salt$hash", real)
    assert script.published["guestinfo.userdata"] == re.search(r"^\+ encoded_userdata='([^']*)'", text, re.M).group(1)


# --- a fresh appliance, end to end ------------------------------------------------------------------

@dataclass
class Hardening:
    site_file: Path
    folder: Path
    vcsim: object
    appliances: object
    key_file: Path

    @property
    def appliance(self):
        (sim,) = self.appliances.running
        return sim

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SCRIPT), "run", str(self.site_file), "--run-folder", str(self.folder), *args],
                              capture_output=True, text=True, timeout=300)

    def stage(self, name: str = "harden") -> StageRun:
        run = StageRun(name, load_site(self.site_file), self.folder, progress=False)
        run.connect_vcenter()
        return run

    def login(self, **how):
        from tkgs_lib.appliance.ssh import SshRunner

        with SshRunner(self.appliance.management_address, known_hosts=str(self.folder / "known_hosts"), **how) as ssh:
            return ssh.run("true").exit_status

    def sshd(self, command: str) -> str:
        from tkgs_lib.appliance.ssh import SshRunner

        with SshRunner(self.appliance.management_address, key_file=str(self.key_file),
                       known_hosts=str(self.folder / "known_hosts")) as ssh:
            return ssh.run(command).stdout

    def extra_config(self) -> dict[str, list]:
        """Every advanced setting of the appliance's VM as the simulator holds it: each key's values, in order."""
        from pyVmomi import vim

        with self.vcsim.soap() as si:
            view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
            (vm,) = [v for v in view.view if v.name == "haproxy01"]
            held: dict[str, list] = {}
            for option in vm.config.extraConfig:
                held.setdefault(option.key, []).append(option.value)
            return held


@contextlib.contextmanager
def hardening_lab(tmp_path: Path, vcsim_binary, monkeypatch, faults=None):
    """A lab of its own: the vCenter simulator and the first-boot player in it, the appliance booted from
    what vCenter holds, the site's key, prepare and deploy applied into the run folder."""
    from tkgs_lib.demo import Appliances, simulator_site_data
    from tkgs_simulators.appliance.netns import Namespace, entered
    from tkgs_simulators.first_boot import FirstBoot
    from tkgs_simulators.ova import build_ova
    from tkgs_simulators.vcsim import VCenterSimulator

    require_appliance_simulator()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    key_file = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    folder = tmp_path / "run"
    with Namespace("lab") as lab, entered(lab.name), contextlib.ExitStack() as stack:
        vcsim = stack.enter_context(VCenterSimulator(binary=vcsim_binary, password=VCENTER_PASSWORD,
                                                     workdir=tmp_path / "vcsim"))
        appliances = stack.enter_context(Appliances(lab.name, faults or {}, "v0.1.10"))
        appliances.known_hosts = folder / "known_hosts"
        stack.enter_context(FirstBoot(vcsim, appliance=appliances.boot))
        data = simulator_site_data(vcsim, ova=build_ova(tmp_path / "haproxy-v0.1.10.ova", disk_size=64 * 1024))
        data["haproxy"].update(boot_timeout=60, ssh_known_hosts=str(folder / "known_hosts"), ssh_key_file=str(key_file))
        site_file = tmp_path / "site.yaml"
        site_file.write_text(yaml.safe_dump(data, sort_keys=False))
        lab_run = Hardening(site_file, folder, vcsim, appliances, key_file)
        for name in ("prepare", "deploy"):
            run = lab_run.stage(name)
            run.carry_out(run.plan(), apply=True)
            if name == "deploy":
                from tkgs_lib.stages.deploy import collect_ca

                collect_ca(run)
            run.close()
        yield lab_run


def rows(plan) -> dict[str, tuple[str, str]]:
    return {s.object: (s.action, s.found) for s in plan.steps}


def test_each_finding_on_a_fresh_appliance_then_apply_then_clean_and_clean_after_a_reboot(
        tmp_path, vcsim_binary, monkeypatch):
    with hardening_lab(tmp_path, vcsim_binary, monkeypatch) as lab:
        published = lab.appliance.guestinfo["guestinfo.userdata"]
        assert lab.extra_config()["guestinfo.userdata"] == [published]  # published by the first-boot player
        run = lab.stage()
        plan = run.plan()
        found = rows(plan)
        log = found["traces in /var/log/vmware/ovf-to-cloud-init.log"]
        assert log[0] == "change" and log[1].startswith("read over SSH: ")
        for what in ("root's password as MD5-crypt with the constant salt SaltSalt",
                     "the cloud-config with root's MD5-crypt hash, base64", "(appliance.root_pwd) in clear",
                     "(loadbalance.haproxy_pwd) in clear"):
            assert what in log[1], what
        assert found["/var/lib/vmware/encoded_userdata.txt"][0] == "change"
        assert found["guestinfo.userdata of VM haproxy01"] == ("change", "read from vCenter: VM haproxy01's "
                                                               "configuration: the cloud-config with root's password "
                                                               "as MD5-crypt, salt SaltSalt (anyone who reads the VM's "
                                                               "configuration can crack it)")
        for prop in ("appliance.root_pwd", "loadbalance.haproxy_pwd"):
            assert found[f"vApp property {prop} of VM haproxy01"][0] == "change"
        assert found["vApp property appliance.ca_cert_key of VM haproxy01"][0] == "ok"  # the appliance made its CA
        assert found["the site's key in /root/.ssh/authorized_keys"][0] == "create"
        assert found["root's password login over SSH (root@ the appliance)"][0] == "change"
        (sha1,) = [f for f in plan.findings if f.path == "haproxy.ca_cert_file"]
        assert sha1.severity == "warning" and "signed with SHA-1 (sha1WithRSAEncryption)" in sha1.message
        assert "CN=10.64.2.10" in sha1.message and "haproxy.ca_cert_file" in sha1.fix
        traces = harden.traces_table(run.latest_read())
        run.close()

        result = lab.run("--stages", "harden", "--apply")
        assert result.returncode == 0, result.stderr[-3000:]
        # Nothing the plan or the traces showed, nor any record of the run, holds a secret in any form.
        hashed = md5_crypt(ROOT_PASSWORD, "SaltSalt")
        forms = [ROOT_PASSWORD, DATAPLANE_PASSWORD, hashed, hashed.replace("$", "\\$"), *published.splitlines()]
        assert scan_for_secrets(lab.folder, forms) == []
        assert not [f for f in forms if f in traces.to_text()]

        def clean() -> None:
            run = lab.stage()
            plan = run.plan()
            assert {s.action for s in plan.steps} == {"ok"}, plan
            statuses = {c.check: c.status for c in harden.checks(run, run.latest_read())}
            run.close()
            assert statuses.pop("the appliance's CA") == "warning" and set(statuses.values()) == {"ok"}, statuses
            assert lab.login(key_file=str(lab.key_file)) == 0  # root by the key
            with pytest.raises(LoginRefused):
                lab.login(password=ROOT_PASSWORD)  # and no more by the password
            log = lab.sshd("cat /var/log/vmware/ovf-to-cloud-init.log")
            assert not [f for f in forms if f in log] and "SaltSalt" in log  # the traces' commands kept, masked
            assert lab.sshd("ls -A /var/lib/vmware") == ".ovf_to_cloud_init.done\n"
            held = lab.extra_config()
            assert not {"guestinfo.userdata", "appliance.root_pwd", "loadbalance.haproxy_pwd"} & set(held), held

        clean()
        checked = (lab.folder / "harden-checks.csv").read_text()
        assert "the appliance's CA" in checked and "warning" in checked
        lab.appliance.reboot()  # the unit runs the script again: its other branch, which adds no secret
        assert "+ ensureMetadata" in lab.sshd("tail -n 3 /var/log/vmware/ovf-to-cloud-init.log")
        clean()


def test_root_password_login_stays_on_when_the_key_does_not_work_and_the_stage_says_so(
        tmp_path, vcsim_binary, monkeypatch):
    """An sshd that takes no key: the key is put in place, a login with it alone is refused, so root's
    password login is not turned off, and the stage fails saying so; the rest is done."""
    with hardening_lab(tmp_path, vcsim_binary, monkeypatch, faults={"sshd_keys": "refused"}) as lab:
        result = lab.run("--stages", "harden", "--apply")
        assert result.returncode == 1
        (said,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert "root's password login over SSH was left on: the site's key (haproxy.ssh_key_file" in said
        assert "a login with it alone did not work" in said and "PubkeyAuthentication" in said
        assert "Changed: change traces in /var/log/vmware/ovf-to-cloud-init.log" in said  # what was done before
        assert lab.login(password=ROOT_PASSWORD) == 0  # root may still log in with its password
        run = lab.stage()
        found = rows(run.plan())
        run.close()
        assert found["root's password login over SSH (root@ the appliance)"][0] == "change"
        assert found["the site's key in /root/.ssh/authorized_keys"][0] == "ok"
        assert found["traces in /var/log/vmware/ovf-to-cloud-init.log"][0] == "ok"


# --- what only the site can fix, on values ------------------------------------------------------------

def test_without_a_key_root_password_login_is_a_warning_and_a_sha1_ca_names_the_site_s_own_ca():
    from helpers import EXAMPLE_SITE
    from tkgs_lib.appliance.hardening import SshdSettings

    site = load_site(EXAMPLE_SITE)
    facts = harden.HardenFacts(sshd=SshdSettings("yes", "yes", "yes"), first_boot_done=True, vm_name="haproxy01",
                               ca_hash="sha1", ca_subject="CN=10.64.2.10", ca_source="the run folder's haproxy-ca.pem")
    plan = harden.plan_harden(site, facts)
    assert not [s for s in plan.steps if "password login" in s.object or "authorized_keys" in s.object]
    (login,) = [f for f in plan.findings if f.path == "haproxy.ssh_key_file"]
    assert login.severity == "warning" and "permitrootlogin yes" in login.message
    (ca,) = [f for f in plan.findings if f.path == "haproxy.ca_cert_file"]
    assert "new-ca.sh (default_md = sha1" in ca.message and "set haproxy.ca_cert_file" in ca.fix
