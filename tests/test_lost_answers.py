"""When vCenter's answer is lost, the runbook does not know what vCenter did: it says the step may have
been carried out and that a rerun shows it, never "nothing had been changed". And a vCenter that
fails while it is read ends every stage in one sentence, never a pyVmomi traceback.

The answers are lost by a proxy between the runbook and the simulator (tests/lossy_vcenter.py),
which lets vCenter carry the request out and then resets the connection."""

from __future__ import annotations

import pytest
import yaml

from lossy_vcenter import LossyVCenter, Rule
from sim_site import site_data
from tkgs_lib.errors import TkgsError
from tkgs_simulators.first_boot import FirstBoot
from tkgs_simulators.ova import build_ova
from tkgs_lib.site import load_site
from tkgs_lib.stages.flow import StageRun

pytestmark = pytest.mark.vcsim
PASSWORDS = {"TKGS_HAPROXY_ROOT_PASSWORD": "canary-r00t-lost-answers", "TKGS_HAPROXY_DATAPLANE_PASSWORD": "canary-dp-lost"}


def site_file(sim, tmp_path, monkeypatch, port=None, **overrides):
    ova = build_ova(tmp_path / "haproxy-v0.1.10.ova", disk_size=64 * 1024)
    data = site_data(sim, **{"content_libraries.haproxy.ova": str(ova), "haproxy.boot_timeout": 30, **overrides})
    if port:
        data["vcenter"]["port"] = port
    path = tmp_path / f"site-{port or sim.port}.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("TKGS_VCENTER_PASSWORD", sim.password)
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)
    return path


def stage(name, path, folder):
    folder.mkdir(parents=True, exist_ok=True)
    run = StageRun(name, load_site(path), folder, progress=False)
    run.connect_vcenter()
    return run


def applied_and_lost(name, path, folder) -> str:
    """The sentence a stage's apply ends in when vCenter's answer is lost."""
    with stage(name, path, folder) as run, pytest.raises(TkgsError) as lost:
        run.carry_out(run.plan(), apply=True)
    return str(lost.value)


def test_a_port_group_whose_answer_is_lost_may_have_been_made_and_a_rerun_shows_it(vcsim, tmp_path, monkeypatch):
    with LossyVCenter(vcsim, Rule(b"AddDVPortgroup_Task", "cut")) as lossy:
        sentence = applied_and_lost("prepare", site_file(vcsim, tmp_path, monkeypatch, lossy.port), tmp_path / "run")
    assert sentence.startswith("port group tkgs-management: the connection to vCenter was lost before it answered "
                               "AddDVPortgroup_Task"), sentence
    assert "May have changed (rerun without apply to see whether it did): create port group tkgs-management " \
           "(AddDVPortgroup_Task to vCenter: sent, no answer came)" in sentence, sentence
    assert "Nothing was changed" not in sentence
    with stage("prepare", site_file(vcsim, tmp_path, monkeypatch), tmp_path / "rerun") as rerun:
        rows = {s.object: s.action for s in rerun.plan().steps}
    assert rows["port group tkgs-management"] == "ok"  # vCenter had made it: the rerun says so


def test_a_deploy_whose_answer_is_lost_says_the_vm_may_have_been_deployed(vcsim, tmp_path, monkeypatch):
    direct = site_file(vcsim, tmp_path, monkeypatch)
    with stage("prepare", direct, tmp_path / "prepared") as prepare:
        prepare.carry_out(prepare.plan(), apply=True)
    with FirstBoot(vcsim), LossyVCenter(vcsim, Rule(b"~action=deploy", "cut")) as lossy:
        sentence = applied_and_lost("deploy", site_file(vcsim, tmp_path, monkeypatch, lossy.port), tmp_path / "run")
    assert "Remote end closed connection without response" in sentence
    assert "May have changed (rerun without apply to see whether it did): create VM haproxy01 (POST " \
           "/rest/com/vmware/vcenter/ovf/library-item/id:" in sentence, sentence
    assert "?action=deploy to vCenter 127.0.0.1:" in sentence and ": sent, no answer came; Destroy_Task: done)" in sentence
    # what a read then found, where "could not POST" hid it
    assert "Read afterwards: vCenter held a VM 'haproxy01', which was then removed, so none is left." in sentence
    assert "Nothing was changed" not in sentence
    with stage("deploy", direct, tmp_path / "again") as again:
        facts = again.read()
    assert facts.vms == []  # as the sentence says


@pytest.mark.parametrize("name", ["prepare", "deploy", "verify", "enable"])
def test_a_vcenter_that_dies_while_a_stage_reads_it_is_one_sentence(vcsim, tmp_path, monkeypatch, name):
    run = stage(name, site_file(vcsim, tmp_path, monkeypatch, **{"haproxy.ssh_trust_on_first_use": True}),
                tmp_path / "run")
    try:
        vcsim.crash()
        if name == "verify":  # it reads vCenter only for the appliance's CA, when the run folder has none
            _, why = run.appliance_ca()
            assert "vCenter could not be asked (" in why and "Traceback" not in why
            return
        with pytest.raises(TkgsError) as failed:
            run.read()
    finally:
        run.close()
    text = str(failed.value)
    assert "\n" not in text and "Traceback" not in text and "vmodl" not in text and "pyVmomi" not in text, text
    assert "vCenter" in text


def test_a_lost_answer_to_the_supervisors_read_is_one_sentence(vcsim, tmp_path, monkeypatch):
    """The enable stage's REST read (/api, namespace-management), its answer cut: one sentence."""
    with LossyVCenter(vcsim, Rule(b"/api/vcenter/namespace-management/clusters", "cut")) as lossy:
        path = site_file(vcsim, tmp_path, monkeypatch, lossy.port)
        run = stage("enable", path, tmp_path / "run")
        try:
            from tkgs_lib.stages.enable import read_supervisor_info

            cluster = run.inventory.cluster._moId
            with pytest.raises(TkgsError) as failed:
                read_supervisor_info(run, cluster)
        finally:
            run.close()
    text = str(failed.value)
    assert "\n" not in text and "Traceback" not in text and "urllib3" not in text, text
    assert "namespace-management" in text and "vCenter" in text, text
