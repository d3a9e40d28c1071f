"""The rotate stage against the simulated appliance and the vCenter simulator, whose stand-in plays the
Supervisor in the appliance's lab: its control plane on the workload network, and its load-balancer
controller programming the appliance's real HAProxy through the Data Plane API with the password vCenter
holds.

One lab for the module, as the enable stage's tests build it: the appliance booted in its namespaces, a
vCenter simulator (7.0 U3) started inside the lab, the appliance's VM in vCenter holding its properties, and
Workload Management enabled with the site's values. A test that rotates a password keeps the passwords the
appliance then takes (``Rotating.passwords``), so every test reads the lab as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml

from appliance_fixtures import DATAPLANE_PASSWORD, ROOT_PASSWORD, start_appliance
from supervisor_fixtures import appliance_vm_in_lab, vcenter_in_lab
from test_ledger_faults import carried_out
from test_namespace_management import spec_for

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
VCENTER_ENV, VCENTER_PASSWORD = "TKGS_VCENTER_PASSWORD", "canary-vcenter-rotate-5e2"
NEW_DATAPLANE_ENV, NEW_ROOT_ENV = "TKGS_HAPROXY_NEW_DATAPLANE_PASSWORD", "TKGS_HAPROXY_NEW_ROOT_PASSWORD"
VIP = "10.64.1.0"
pytestmark = [pytest.mark.slow, pytest.mark.vcsim]


@dataclass
class Rotating:
    lab: object
    vcsim: object
    site_file: Path
    cluster: str
    # what the appliance takes now: the Data Plane API's password and root's
    passwords: dict = field(default_factory=lambda: {"dataplane": DATAPLANE_PASSWORD, "root": ROOT_PASSWORD})

    def env(self, **new: str) -> dict:
        return {**os.environ, VCENTER_ENV: VCENTER_PASSWORD,
                "TKGS_HAPROXY_DATAPLANE_PASSWORD": self.passwords["dataplane"],
                "TKGS_HAPROXY_ROOT_PASSWORD": self.passwords["root"],
                **({NEW_DATAPLANE_ENV: new["dataplane"]} if "dataplane" in new else {}),
                **({NEW_ROOT_ENV: new["root"]} if "root" in new else {})}

    def site(self, tmp_path: Path, **rotate) -> Path:
        """The module's site with its own rotate block (and the vcenter and haproxy values given)."""
        data = yaml.safe_load(self.site_file.read_text())
        for block in ("vcenter", "haproxy"):
            data[block].update(rotate.pop(block, None) or {})
        data["rotate"] = {"supervisor_timeout": 40, **rotate}
        path = self.site_file.with_name(f"rotate-{tmp_path.name}.yaml")
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def run_folder(self, tmp_path: Path) -> Path:
        import shutil

        folder = tmp_path / "run"
        shutil.copytree(self.lab.run_folder, folder)
        return folder

    def stage(self, site_file: Path, folder: Path, env: dict, apply: bool = True):
        """The stage as its notebook runs it, in this process (from the lab): its plan and the error it stopped
        with (None when it passed)."""
        return self.in_lab(lambda: carried_out("rotate", site_file, folder, apply), env)

    def in_lab(self, work, env: dict):
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            return self.lab.sim.in_lab(work)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def ssh(self, command: str, password: str | None = None):
        from tkgs_lib.appliance.ssh import SshRunner

        def work():
            with SshRunner(self.lab.sim.management_address, password=password or self.passwords["root"],
                           known_hosts=str(self.lab.site_file.parent / "known_hosts")) as runner:
                return runner.run(command)
        return self.lab.sim.in_lab(work)

    def takes(self, password: str) -> bool:
        from tkgs_lib.appliance.dataplane import get_info
        from tkgs_lib.errors import ApplianceError

        def work():
            try:
                get_info(self.lab.sim.management_address, 5556, "admin", password, self.lab.sim.ca_pem, trusted_by="ca")
            except ApplianceError as exc:
                assert "HTTP 401" in exc.message, exc.message
                return False
            return True
        return self.lab.sim.in_lab(work)

    def info(self, vcsim=None):
        from tkgs_lib.vsphere.namespace_management import NamespaceManagement
        from tkgs_lib.vsphere.rest import RestClient
        from tkgs_lib.vsphere.tls import TlsPolicy

        sim = vcsim or self.vcsim

        def work():
            rest = RestClient(sim.host, sim.port, TlsPolicy(ca_file=str(sim.ca_file)))
            rest.login(sim.username, sim.password)
            try:
                return NamespaceManagement(rest).get(self.cluster)
            finally:
                rest.logout()
        return self.lab.sim.in_lab(work)


def enable_by_hand(lab, vcsim, cluster: str) -> None:
    """Workload Management enabled with the site's values, as the enable stage sends them."""
    from tkgs_lib.vsphere.namespace_management import AddressRange, NamespaceManagement
    from tkgs_lib.vsphere.rest import RestClient
    from tkgs_lib.vsphere.tls import TlsPolicy

    def work():
        rest = RestClient(vcsim.host, vcsim.port, TlsPolicy(ca_file=str(vcsim.ca_file)))
        rest.login(vcsim.username, vcsim.password)
        try:
            NamespaceManagement(rest).enable(cluster, spec_for(lab.sim.ca_pem, 5556, host=lab.sim.management_address,
                                                               password=DATAPLANE_PASSWORD,
                                                               vips=(AddressRange(VIP, 256),)))
        finally:
            rest.logout()
    lab.sim.in_lab(work)


@pytest.fixture(scope="module")
def rotating(vcsim_binary, tmp_path_factory):
    from tkgs_lib.demo import simulator_site_data

    tmp = tmp_path_factory.mktemp("rotate")
    lab = start_appliance(tmp)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lab.sim.stop)
        vcsim = vcenter_in_lab(lab, vcsim_binary, tmp / "vcsim", cleanup, VCENTER_PASSWORD)
        site_file = lab.site_file.with_name("rotate-site.yaml")
        site_file.write_text(yaml.safe_dump(simulator_site_data(vcsim, base=yaml.safe_load(lab.site_file.read_text())),
                                            sort_keys=False))
        cluster = appliance_vm_in_lab(lab, vcsim)
        enable_by_hand(lab, vcsim, cluster)
        rotating = Rotating(lab, vcsim, site_file, cluster)
        deadline = time.monotonic() + 30
        while rotating.info().config_status != "RUNNING":
            assert time.monotonic() < deadline, "the Supervisor did not run within 30 s"
            time.sleep(0.2)
        yield rotating


def canary(what: str) -> str:
    return f"canary-new-{what}-{secrets.token_hex(4)}"


def test_the_data_plane_api_and_root_passwords_rotate_end_to_end(rotating, tmp_path):
    """`tkgs-runbook run --stages rotate --apply`: the appliance takes the new Data Plane API password, vCenter is
    told it, and the played Supervisor programs the appliance with it while the appliance refuses the old one;
    root logs in with its new password only. Nothing secret reaches the run folder."""
    from tkgs_lib.credentials import scan_for_secrets
    from tkgs_lib.effects import read_effects
    from tkgs_lib.errors import ApplianceError, LoginRefused
    from tkgs_simulators.supervisor import reconcile_load_balancer

    new = {"dataplane": canary("dataplane"), "root": canary("root")}
    old = dict(rotating.passwords)
    site_file = rotating.site(tmp_path, dataplane_password_env=NEW_DATAPLANE_ENV, root_password_env=NEW_ROOT_ENV)
    folder = rotating.run_folder(tmp_path)
    seen = len(rotating.vcsim.load_balancer_updates)
    result = rotating.lab.sim.lab_run([str(SCRIPT), "run", str(site_file), "--stages", "rotate", "--apply",
                                       "--run-folder", str(folder)], env=rotating.env(**new), capture_output=True,
                                      text=True, timeout=300)
    if result.returncode == 0 or rotating.takes(new["dataplane"]):
        rotating.passwords.update(new)  # what the appliance takes now, for the module's other tests
    assert result.returncode == 0, result.stderr[-3000:]
    plan = pd.read_csv(folder / "rotate-plan.csv", keep_default_na=False)
    assert list(plan["action"]) == ["change", "change"], plan.to_string()
    assert set(pd.read_csv(folder / "rotate-after-apply.csv")["action"]) == {"ok"}

    # vCenter was told the new password, through LoadBalancers.update, on the ledger.
    [update] = rotating.vcsim.load_balancer_updates[seen:]
    assert update.spec.ha_proxy_config_update_spec.password == new["dataplane"]
    sent = [e for e in read_effects(folder / "effects.jsonl") if e.stage == "rotate"]
    assert [e.request for e in sent if e.target.startswith("vCenter")] == [
        f"PATCH /api/vcenter/namespace-management/clusters/{rotating.cluster}/load-balancers/haproxy-lb"]
    assert all(e.outcome == "done" for e in sent)
    assert any("userlist controller" in e.request for e in sent) and any("chpasswd" in e.request for e in sent)

    # The played Supervisor programs the appliance with the new password; the old one is refused by the appliance.
    info = rotating.info()
    assert info.config_status == "RUNNING", info.messages
    servers = rotating.vcsim.control_plane(rotating.cluster).servers
    url, ca = f"https://{rotating.lab.sim.management_address}:5556", rotating.lab.sim.ca_pem
    rotating.lab.sim.in_lab(lambda: reconcile_load_balancer(url, "admin", new["dataplane"], ca, VIP, servers))
    with pytest.raises(ApplianceError, match=r"HTTP 401"):
        rotating.lab.sim.in_lab(lambda: reconcile_load_balancer(url, "admin", old["dataplane"], ca, VIP, servers))
    assert rotating.takes(new["dataplane"]) and not rotating.takes(old["dataplane"])

    # root logs in with the new password, and no longer with the old one.
    assert rotating.ssh("id -un", new["root"]).stdout.strip() == "root"
    with pytest.raises(LoginRefused):
        rotating.ssh("true", old["root"])
    assert scan_for_secrets(folder, [*new.values(), *old.values(), VCENTER_PASSWORD]) == []
    assert "put it in $TKGS_HAPROXY_DATAPLANE_PASSWORD" in result.stdout + "".join(
        json.dumps(c.get("outputs")) for c in json.loads((folder / "10_rotate_secrets.ipynb").read_text())["cells"])


def test_the_certificate_is_reissued_from_the_same_ca_and_vcenter_is_not_told(rotating, tmp_path):
    from cryptography import x509

    from tkgs_lib.appliance.ca import Certificate

    site_file = rotating.site(tmp_path, certificate=True)
    folder = rotating.run_folder(tmp_path)
    before = rotating.ssh("cat /etc/haproxy/server.crt /etc/haproxy/ca.crt").stdout
    seen = len(rotating.vcsim.load_balancer_updates)
    plan, error = rotating.stage(site_file, folder, rotating.env())
    assert error is None, error
    assert [s.action for s in plan.steps] == ["change"]
    table = pd.read_csv(folder / "rotate-certificate.csv", keep_default_na=False)
    assert list(table["certificate"]) == ["replaced", "now"]
    old, new = table.iloc[0], table.iloc[1]
    assert old["SHA-256 fingerprint"] != new["SHA-256 fingerprint"]
    assert new["valid"].endswith("(3,650 days)") and old["issuer"] == new["issuer"]  # new-cert.sh's default
    # The CA is the one the appliance had and vCenter holds: the new certificate chains to it.
    after = rotating.ssh("cat /etc/haproxy/server.crt /etc/haproxy/ca.crt").stdout
    ca_after = after[after.index("-----BEGIN CERTIFICATE-----", 10):]
    assert ca_after == before[before.index("-----BEGIN CERTIFICATE-----", 10):]
    cert = x509.load_pem_x509_certificate(after.encode())
    ca = x509.load_pem_x509_certificate(rotating.lab.sim.ca_pem.encode())
    cert.verify_directly_issued_by(ca)
    shown = Certificate.of(cert)
    assert shown.fingerprint == new["SHA-256 fingerprint"]
    assert {"localhost", "127.0.0.1", rotating.lab.sim.management_address} <= set(shown.names)
    assert len(rotating.vcsim.load_balancer_updates) == seen  # vCenter needs no change
    assert rotating.info().config_status == "RUNNING"
    provided = json.loads((folder / "provided.json").read_text())["reissued_certificate"]
    assert provided["fingerprint"] == new["SHA-256 fingerprint"]
    again, error = rotating.stage(site_file, folder, rotating.env(), apply=False)  # this run folder reissued it
    assert error is None and [s.action for s in again.steps] == ["ok"]


def test_a_certificate_from_another_ca_is_refused_as_an_upgrade_sized_change_and_nothing_changes(rotating, tmp_path):
    from tkgs_lib.effects import read_effects
    from tkgs_lib.errors import ConflictError
    from tkgs_simulators.appliance.dataplane_server import make_ca

    pem, key = make_ca("elsewhere.local", "Another CA")
    (tmp_path / "other-ca.pem").write_text(pem)
    (tmp_path / "other-ca.key").write_text(key)
    (tmp_path / "other-ca.key").chmod(0o600)
    site_file = rotating.site(tmp_path, certificate=True, haproxy={"ca_cert_file": str(tmp_path / "other-ca.pem"),
                                                                   "ca_key_file": str(tmp_path / "other-ca.key")})
    folder = rotating.run_folder(tmp_path)
    files = "md5sum /etc/haproxy/server.crt /etc/haproxy/server.key /etc/haproxy/ca.crt"
    before = rotating.ssh(files).stdout
    plan, error = rotating.stage(site_file, folder, rotating.env())
    assert isinstance(error, ConflictError), error
    [step] = plan.steps
    assert step.action == "conflict" and "is not the appliance's CA (/etc/haproxy/ca.crt)" in step.why, step.why
    assert "a new CA is an upgrade-sized change, refused here" in step.why
    assert [e for e in read_effects(folder / "effects.jsonl") if e.stage == "rotate"] == []
    assert rotating.ssh(files).stdout == before


def test_a_refused_update_in_vcenter_puts_the_appliances_password_back(rotating, tmp_path):
    new = canary("dataplane")
    site_file = rotating.site(tmp_path, dataplane_password_env=NEW_DATAPLANE_ENV)
    folder = rotating.run_folder(tmp_path)
    rotating.vcsim.refuse_next_load_balancer_update("a test refuses this update")
    plan, error = rotating.stage(site_file, folder, rotating.env(dataplane=new))
    assert [s.action for s in plan.steps] == ["change"]
    assert error is not None and "a test refuses this update" in error.message, error
    assert "It was put back" in error.message and "programs the appliance with the old password again" in error.message
    assert rotating.takes(rotating.passwords["dataplane"]) and not rotating.takes(new)
    assert rotating.info().config_status == "RUNNING"


def test_a_supervisor_that_does_not_take_the_new_password_gets_both_put_back(rotating, tmp_path):
    """vCenter accepts the update, but the Supervisor's controller goes on with the old password, which the appliance
    now refuses: vCenter reports it CONFIGURING, the wait gives up, and the appliance and vCenter both get the old
    password back, the Supervisor programming the appliance with it again."""
    new = canary("dataplane")
    site_file = rotating.site(tmp_path, dataplane_password_env=NEW_DATAPLANE_ENV, supervisor_timeout=15)
    folder = rotating.run_folder(tmp_path)
    seen = len(rotating.vcsim.load_balancer_updates)
    rotating.vcsim.lose_next_load_balancer_update()
    plan, error = rotating.stage(site_file, folder, rotating.env(dataplane=new))
    assert [s.action for s in plan.steps] == ["change"]
    assert error is not None and "the Supervisor is not served through the appliance" in error.message, error
    assert "HTTP 401" in error.message, error.message  # the controller's own words, as vCenter reports them
    assert "vCenter told the old password again" in error.message
    assert "programs the appliance with the old password again" in error.message
    told = [u.spec.ha_proxy_config_update_spec.password for u in rotating.vcsim.load_balancer_updates[seen:]]
    assert told == [new, rotating.passwords["dataplane"]]
    assert rotating.takes(rotating.passwords["dataplane"]) and not rotating.takes(new)
    assert rotating.info().config_status == "RUNNING"


def test_on_a_vcenter_before_7_0_u3_the_password_rotation_is_refused_and_nothing_changes(rotating, tmp_path,
                                                                                        vcsim_binary):
    """vCenter 7.0 U2 has no call to tell the Supervisor a new password: the plan says so and nothing is sent."""
    from tkgs_lib.effects import read_effects
    from tkgs_lib.errors import ConflictError
    from tkgs_simulators.appliance.netns import entered
    from tkgs_simulators.vcsim import VCenterSimulator

    with entered(rotating.lab.sim.lab):
        old_vcenter = VCenterSimulator(binary=vcsim_binary, password=VCENTER_PASSWORD, workdir=tmp_path / "vcsim",
                                       vcenter_version="7.0.2")
        old_vcenter.supervisor.load_balancer_timeout = 0.5  # its Supervisor is not played in the lab
        old_vcenter.start()
    try:
        enable_by_hand(rotating.lab, old_vcenter, rotating.cluster)
        from tkgs_lib.demo import simulator_site_data

        vcenter = simulator_site_data(old_vcenter, base=yaml.safe_load(rotating.site_file.read_text()))["vcenter"]
        site_file = rotating.site(tmp_path, dataplane_password_env=NEW_DATAPLANE_ENV, vcenter=vcenter)
        folder = rotating.run_folder(tmp_path)
        config = rotating.ssh("md5sum /etc/haproxy/haproxy.cfg").stdout
        new = canary("dataplane")
        plan, error = rotating.stage(site_file, folder, rotating.env(dataplane=new))
        assert isinstance(error, ConflictError), error
        [step] = plan.steps
        assert step.action == "conflict"
        assert "vCenter 7.0.2 build 17920168 (API 7.0.2.0) has no call that gives the Supervisor a new" in step.why
        assert "came with API 7.0.3.0 (vCenter 7.0 Update 3)" in step.why and "Nothing is changed" in step.why
        assert "nothing was changed" in error.message
        # Nothing changed: nothing on the ledger, the file as it was, the old password taken, vCenter told nothing.
        assert [e for e in read_effects(folder / "effects.jsonl") if e.stage == "rotate"] == []
        assert rotating.ssh("md5sum /etc/haproxy/haproxy.cfg").stdout == config
        assert rotating.takes(rotating.passwords["dataplane"]) and not rotating.takes(new)
        assert old_vcenter.load_balancer_updates == []
    finally:
        old_vcenter.stop()
