"""Stage 3 against the vCenter simulator, with the appliance's first boot played beside it.

The OVA carries the appliance's real descriptor when ../shared is beside the checkout, else the
generated one. The simulator keeps the property values vCenter received in the VM's extraConfig
(it has no vAppConfig): the tests read them there to prove what was sent; the product does not.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import papermill as pm
import pytest
import yaml
from pyVmomi import vim

from appliance_material import appliance_ova, descriptor_text
from sim_site import site_data
from tkgs_lib.appliance.ca import CA_GUESTINFO
from tkgs_lib.errors import ValidationFailed, VSphereError
from tkgs_lib.stages.provided import (ApplianceCa, ApplianceRelease, ApplianceVm, DataplaneAddress, PreparedIds,
                                      Provided, provide)
from tkgs_simulators.ova import build_ova
from tkgs_simulators.first_boot import FirstBoot
from tkgs_lib.site import load_site
from tkgs_lib.stages import deploy
from tkgs_lib.stages.appliance_vm import network_mapping
from tkgs_lib.stages.flow import StageRun
from tkgs_lib.vsphere.connection import connect
from tkgs_lib.vsphere.inventory import Inventory
from tkgs_lib.vsphere.vm import read_vms

pytestmark = pytest.mark.vcsim

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
PASSWORDS = {"TKGS_HAPROXY_ROOT_PASSWORD": "canary-r00t-Pa55-never-shown",
             "TKGS_HAPROXY_DATAPLANE_PASSWORD": "canary-dataplane-Pa55-never-shown"}


@pytest.fixture
def first_boot(vcsim):
    with FirstBoot(vcsim) as player:
        yield player


def write_site(vcsim, tmp_path, monkeypatch, *, ova=None, **overrides) -> Path:
    ova = ova or appliance_ova(tmp_path)
    data = site_data(vcsim, **{"haproxy.boot_timeout": 30, **overrides})
    if data.get("content_libraries"):
        data["content_libraries"]["haproxy"]["ova"] = str(ova)
    else:
        data["haproxy"]["ova"] = str(ova)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv(data["vcenter"]["password_env"], vcsim.password)
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)
    return path


def stage(name, site_file, session, tmp_path) -> StageRun:
    return StageRun(name, load_site(site_file), tmp_path, vcenter=session, progress=False)


def prepare(site_file, session, tmp_path) -> None:
    run = stage("prepare", site_file, session, tmp_path)
    run.carry_out(run.plan(), apply=True)


def appliance(session, site_file):
    site = load_site(site_file)
    return read_vms(Inventory(session, site.vcenter), site.haproxy.vm_name)


def sent_properties(session, site_file) -> dict[str, str]:
    """What vCenter received, from where the simulator keeps it (the VM's extraConfig)."""
    (vm,) = appliance(session, site_file)
    return {k: v for k, v in vm.extra_config.items() if k.startswith(("appliance.", "network.", "loadbalance."))}


def test_frontend_from_the_library_with_every_property_then_the_ca_then_a_rerun_all_ok(
        vcsim, first_boot, tmp_path, monkeypatch):
    site_file = write_site(vcsim, tmp_path, monkeypatch)
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        facts = run.read()
        prepared = Provided.load(tmp_path).get(PreparedIds)  # deploy takes the ids prepare provided
        assert facts.portgroups == prepared.portgroups and len(facts.portgroups) == 3
        assert facts.placement.policy_id == prepared.storage_policy
        wanted = deploy.properties(run, facts).as_dict()
        outcome = run.carry_out(run.plan(facts), apply=True)
        assert [s.action for s in outcome.ran] == ["create", "create", "change"]

        (vm,) = appliance(session, site_file)
        assert [n.network for n in vm.nics] == ["tkgs-management", "tkgs-workload", "tkgs-frontend"]
        assert sent_properties(session, site_file) == wanted  # passwords included
        assert wanted["appliance.root_pwd"] == PASSWORDS["TKGS_HAPROXY_ROOT_PASSWORD"]
        # The appliance saw the cloud-init setting at its power-on: set before it, as it must be.
        boot = first_boot.boots["haproxy01"]
        assert boot.cloud_init_set == "FALSE" and boot.configured

        release = Provided.load(tmp_path).get(ApplianceRelease)  # the verify and repair stages read it there
        assert release.version == "v0.1.10" and release.source.startswith("the descriptor of the OVA ")
        assert run.appliance_release.known and str(run.appliance_release.release) == "v0.1.10"

        collected = deploy.collect_ca(run)
        assert collected.saved == tmp_path / "haproxy-ca.pem"
        assert collected.saved.read_text() == boot.ca_pem
        provided = Provided.load(tmp_path)  # what verify and enable read, instead of importing this stage
        assert provided.get(ApplianceCa) == ApplianceCa("haproxy-ca.pem")
        assert provided.get(DataplaneAddress) == DataplaneAddress("10.64.2.10", 5556)
        assert provided.get(ApplianceVm) == ApplianceVm("haproxy01", vm.moid)
        # new-ca.sh's subject: its defaults, and the appliance's address as the common name
        assert collected.ca.subject == "CN=10.64.2.10,OU=CAPV,O=VMware,L=Palo Alto,ST=California,C=US"
        assert len(collected.ca.fingerprint) == 95

        changes_before = _change_version(session, vm.moid)
        rerun = run.plan()
        assert {s.action for s in rerun.steps} == {"ok"}
        assert run.carry_out(rerun, apply=True).ran == []
        assert _change_version(session, vm.moid) == changes_before


def test_the_ids_prepare_recorded_are_taken_not_asked_again(vcsim, tmp_path, monkeypatch):
    """Deploy reads the port groups' and the storage policy's ids from what prepare provided (provided.json);
    ids vCenter does not have prove they came from there. Without the record, vCenter is asked."""
    site_file = write_site(vcsim, tmp_path, monkeypatch, content_libraries=None)
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        asked = stage("deploy", site_file, session, tmp_path / "elsewhere").read()  # no record there
        assert asked.portgroups == Provided.load(tmp_path).get(PreparedIds).portgroups and asked.placement.policy_id
        recorded = {name: f"dvportgroup-recorded-{i}" for i, name in enumerate(sorted(asked.portgroups))}
        provide(tmp_path, PreparedIds(recorded, "policy-recorded"))
        facts = stage("deploy", site_file, session, tmp_path).read()
    assert facts.portgroups == recorded
    assert (facts.placement.policy_id, facts.placement.policy) == ("policy-recorded", load_site(site_file).storage.policy)


def _change_version(session, moid: str) -> str:
    return vim.VirtualMachine(moid, session.si._stub).config.changeVersion


def test_an_ova_of_an_unknown_release_is_a_warning_naming_the_known_ones(vcsim, tmp_path, monkeypatch):
    ova = build_ova(tmp_path / "haproxy-v0.3.0.ova", name="haproxy-v0.3.0", disk_size=64 * 1024)
    site_file = write_site(vcsim, tmp_path, monkeypatch, ova=ova, content_libraries=None)
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        run = stage("deploy", site_file, session, tmp_path)
        plan = run.plan(run.read())
    (warning,) = [f for f in plan.findings if f.path == "haproxy.ova"]
    assert warning.severity == "warning" and "release v0.3.0" in warning.message
    assert "v0.1.7, v0.1.8, v0.1.9, v0.1.10, v0.2.0" in warning.message and "nearest known one" in warning.message
    assert Provided.load(tmp_path).get(ApplianceRelease).version == "v0.3.0"
    assert str(run.appliance_release.release) == "v0.2.0" and not run.appliance_release.known


@pytest.mark.parametrize("release", ["v0.1.8", "v0.1.10"])
def test_an_ova_older_than_the_vcenter_takes_is_refused_at_the_desk(vcsim, tmp_path, monkeypatch, release):
    """vCenter 7.0.1 and later need the appliance v0.1.9 or later (the appliance's README at v0.2.0); the
    simulator is vCenter 7.0.3: an OVA of v0.1.8 is refused before anything is deployed, v0.1.10 goes on."""
    ova = build_ova(tmp_path / f"haproxy-{release}.ova", name=f"haproxy-{release}", disk_size=64 * 1024)
    site_file = write_site(vcsim, tmp_path, monkeypatch, ova=ova, content_libraries=None)
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        plan = run.plan()
        errors = [f for f in plan.findings if f.is_error]
        if release == "v0.1.10":
            assert errors == [] and [s.action for s in plan.steps][0] == "create"
            return
        [error] = errors
        assert error.path == "haproxy.ova"
        assert error.message.startswith(f"the OVA haproxy-v0.1.8.ova is the appliance's release v0.1.8, and vCenter "
                                        f"7.0.3 build 21477706 (API 7.0.3.0) is 7.0.1 or later, which needs release "
                                        f"v0.1.9 or later (the appliance's README at v0.2.0: "), error.message
        assert error.fix.startswith("deploy release v0.1.10 (haproxy-v0.1.10.ova, the article's) or v0.2.0 instead: "
                                    "download its OVA from https://github.com/haproxytech/vmware-haproxy/releases "
                                    "and give its path in haproxy.ova."), error.fix
        assert plan.steps == []
        with pytest.raises(ValidationFailed):
            run.carry_out(plan, apply=True)
        assert appliance(session, site_file) == []  # nothing deployed


def test_the_default_option_gives_two_nics_and_no_frontend_property(vcsim, first_boot, tmp_path, monkeypatch):
    site_file = write_site(vcsim, tmp_path, monkeypatch, **{
        "haproxy.deployment": "default", "haproxy.frontend_ip": None, "networks.frontend": None,
        "haproxy.load_balancer_ranges": ["10.64.12.0/24"]})
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        run.carry_out(run.plan(), apply=True)
        (vm,) = appliance(session, site_file)
        assert [n.network for n in vm.nics] == ["tkgs-management", "tkgs-workload"]
        sent = sent_properties(session, site_file)
        assert not [k for k in sent if "frontend" in k] and sent["loadbalance.service_ip_range"] == "10.64.12.0/24"


@pytest.mark.parametrize("refusal", ["undeclared property", "value outside the type's qualifiers"])
def test_a_bad_property_is_refused_before_any_change(vcsim, first_boot, tmp_path, monkeypatch, refusal):
    if refusal == "undeclared property":
        site_file = write_site(vcsim, tmp_path, monkeypatch,
                               **{"haproxy.additional_workload_networks": ["10.64.16.0/21"]})
        field = "haproxy.additional_workload_networks"
    else:
        narrow = descriptor_text().replace("MinValue(1),MaxValue(65535)", "MinValue(1),MaxValue(1024)")
        site_file = write_site(vcsim, tmp_path, monkeypatch, ova=appliance_ova(tmp_path, descriptor=narrow))
        field = "haproxy.dataplane_port"
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        plan = run.plan()
        assert [f.path for f in plan.findings if f.is_error] == [field]
        with pytest.raises(ValidationFailed) as refused:
            run.carry_out(plan, apply=True)
        assert field in str(refused.value)
        assert appliance(session, site_file) == []  # no VM: nothing was touched


def test_a_guest_that_never_reports_ends_in_the_timeout_sentence(vcsim, tmp_path, monkeypatch):
    site_file = write_site(vcsim, tmp_path, monkeypatch, **{"haproxy.boot_timeout": 2})
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        with pytest.raises(VSphereError) as timeout:
            run.carry_out(run.plan(), apply=True)  # no first boot is played: the guest stays silent
    sentence = str(timeout.value)
    assert "VM 'haproxy01' did not come up within 2 s (haproxy.boot_timeout)" in sentence
    assert "never reported its management address 10.64.2.10" in sentence and "no CA was published" in sentence
    assert "console" in sentence and "Traceback" not in sentence


def test_without_the_cloud_init_setting_the_appliance_stays_unconfigured(vcsim, first_boot, tmp_path, monkeypatch):
    """The simulated appliance honours the setting as the real one on vSphere 8.0U3: which is why a
    configured boot in the tests above proves the stage set it before the first power-on."""
    site_file = write_site(vcsim, tmp_path, monkeypatch, **{"haproxy.boot_timeout": 2})
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        plan = run.plan()
        create_vm, _setting, _power = plan.steps
        create_vm.run()  # deploy only: the setting's step is skipped on purpose
        (vm,) = appliance(session, site_file)
        ops = deploy.VmOps(session, run.inventory, progress=False)
        with pytest.raises(VSphereError, match="did not come up"):
            ops.power_on(vm.moid, deploy.BootWait("10.64.2.10", 2))
    boot = first_boot.boots["haproxy01"]
    assert boot.cloud_init_set is None and not boot.configured


def test_an_existing_vm_is_compared_never_redeployed_unless_the_site_allows(vcsim, first_boot, tmp_path, monkeypatch):
    site_file = write_site(vcsim, tmp_path, monkeypatch)
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        run.carry_out(run.plan(), apply=True)
        (first,) = appliance(session, site_file)

        data = yaml.safe_load(site_file.read_text())
        data["haproxy"].update({"deployment": "default", "frontend_ip": None, "load_balancer_ranges": ["10.64.12.0/24"]})
        data["networks"]["frontend"] = None
        site_file.write_text(yaml.safe_dump(data))
        run = stage("deploy", site_file, session, tmp_path)
        plan = run.plan()
        (conflict,) = plan.steps
        assert conflict.action == "conflict" and "it has 3 NICs (frontend), the plan 2 (default)" in conflict.why
        assert "could not be read" in conflict.found  # the simulator holds no vApp config
        with pytest.raises(Exception, match="conflict"):
            run.carry_out(plan, apply=True)
        assert [vm.moid for vm in appliance(session, site_file)] == [first.moid]  # untouched

        data["haproxy"]["replace_existing"] = True
        site_file.write_text(yaml.safe_dump(data))
        run = stage("deploy", site_file, session, tmp_path)
        plan = run.plan()
        assert plan.steps[0].action == "change" and "destroyed and deployed again" in plan.steps[0].why
        run.carry_out(plan, apply=True)
        (second,) = appliance(session, site_file)
        assert second.moid != first.moid and len(second.nics) == 2


def test_without_content_libraries_the_ova_file_itself_is_imported(vcsim, first_boot, tmp_path, monkeypatch):
    site_file = write_site(vcsim, tmp_path, monkeypatch, content_libraries=None)
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)  # port groups and storage; no library
        run = stage("deploy", site_file, session, tmp_path)
        facts = run.read()
        assert facts.source.kind == "file"
        wanted = deploy.properties(run, facts).as_dict()
        run.carry_out(run.plan(facts), apply=True)
        (vm,) = appliance(session, site_file)
        assert [n.network for n in vm.nics] == ["tkgs-management", "tkgs-workload", "tkgs-frontend"]
        assert sent_properties(session, site_file) == wanted
        assert deploy.collect_ca(run).saved.exists()


def test_an_interrupted_import_leaves_no_vm(vcsim, tmp_path, monkeypatch):
    """Ctrl-C half way through the disk: the lease is aborted and the VM it made destroyed."""
    from tkgs_lib.vsphere.ovf_import import import_ova
    from tkgs_lib.vsphere.vm import DeploySpec

    site_file = write_site(vcsim, tmp_path, monkeypatch, content_libraries=None)
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        facts = run.read()
        props = deploy.properties(run, facts)
        spec = DeploySpec("haproxy01", "frontend", network_mapping(run, facts.descriptor, facts.portgroups, []), props.as_dict(),
                          frozenset(), facts.placement, "thin")

        def interrupt(sent: int) -> None:  # the person presses Ctrl-C once the upload has begun
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            import_ova(session, run.inventory, facts.source, spec, progress=False, on_chunk=interrupt)
        assert appliance(session, site_file) == []


def test_the_notebook_and_run_deploy_leave_no_password_in_the_run_folder(vcsim, first_boot, tmp_path, monkeypatch):
    site_file = write_site(vcsim, tmp_path, monkeypatch)
    env = {**os.environ}
    result = subprocess.run([str(SCRIPT), "run", str(site_file), "--stages", "prepare", "deploy", "--apply",
                             "--output", str(tmp_path / "runs")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = (tmp_path / "runs").iterdir()
    assert {"03_deploy_haproxy.ipynb", "03_deploy_haproxy.html", "deploy-plan.csv", "haproxy-ca.pem"} <= {
        p.name for p in folder.iterdir()}
    secrets = list(PASSWORDS.values()) + [vcsim.password]
    for path in folder.iterdir():
        data = path.read_bytes()
        assert not [s for s in secrets if s.encode() in data], f"a password reached {path.name}"
    executed = json.loads((folder / "03_deploy_haproxy.ipynb").read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", "")) for o in outputs)
    assert "appliance.root_pwd            ********" in text
    assert re.search(r"SHA-256 fingerprint\s+[0-9A-F]{2}:", text)

    # The notebook by papermill directly, a dry run of the same site after the apply: all ok.
    out = tmp_path / "rerun.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "03_deploy_haproxy.ipynb"), str(out), cwd=str(NOTEBOOKS), progress_bar=False,
                        kernel_name="python3", parameters={"site_file": str(site_file),
                                                           "output_dir": str(tmp_path), "apply": False})
    import pandas as pd

    assert set(pd.read_csv(tmp_path / "deploy-plan.csv")["action"]) == {"ok"}


def test_placement_follows_the_site_and_a_missing_folder_or_pool_is_a_finding(vcsim, first_boot, tmp_path, monkeypatch):
    site_file = write_site(vcsim, tmp_path, monkeypatch, **{"haproxy.vm_folder": "tanzu/lb"})
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        plan = run.plan()
        (finding,) = [f for f in plan.findings if f.is_error]
        assert finding.path == "haproxy.vm_folder" and "'DC0/vm' has no folder 'tanzu'" in finding.message
        assert plan.steps == [] and appliance(session, site_file) == []

        vm_folder = run.inventory.datacenter.vmFolder
        vm_folder.CreateFolder("tanzu").CreateFolder("lb")
        run = stage("deploy", site_file, session, tmp_path)
        facts = run.read()
        assert facts.placement.folder == "DC0/vm/tanzu/lb" and facts.placement.policy == "Tanzu Storage Policy"
        run.carry_out(run.plan(facts), apply=True)
        (vm,) = appliance(session, site_file)
        assert vm.folder == "lb"
        tables = run.reports()
        assert "property" in tables["the OVA's descriptor"]["what"].tolist()

    pool_site = write_site(vcsim, tmp_path, monkeypatch, **{"haproxy.resource_pool": "nope"})
    with connect(load_site(pool_site).vcenter, password=vcsim.password) as session:
        plan = stage("deploy", pool_site, session, tmp_path).plan()
        assert [f.path for f in plan.findings if f.is_error] == ["haproxy.resource_pool"]


def test_verify_trusts_the_ca_the_vm_publishes_when_the_run_folder_has_none(vcsim, first_boot, tmp_path, monkeypatch):
    """The verify stage's second source of trust: a run of its own has no haproxy-ca.pem, so it reads
    guestinfo.dataplaneapi.cacert from the VM in vCenter, and says so."""
    site_file = write_site(vcsim, tmp_path, monkeypatch)
    with connect(load_site(site_file).vcenter, password=vcsim.password) as session:
        prepare(site_file, session, tmp_path)
        run = stage("deploy", site_file, session, tmp_path)
        run.carry_out(run.plan(), apply=True)
        elsewhere = tmp_path / "a-later-run"
        elsewhere.mkdir()
        pem, trusted_by = stage("verify", site_file, session, elsewhere).appliance_ca()
    assert pem == first_boot.boots["haproxy01"].ca_pem
    assert trusted_by == f"the CA VM haproxy01 publishes in {CA_GUESTINFO} (read from vCenter)"
