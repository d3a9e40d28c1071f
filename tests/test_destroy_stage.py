"""The destroy stage: what the run made in vCenter, removed in reverse, by id, and nothing else.

Against the vCenter simulator with the appliance's first boot played beside it: prepare and deploy with
apply (the record of what they made, by vCenter's ids, in provided.json), then destroy; the simulator's
whole inventory is compared before the run and after the destroy. After the namespace and cluster stages,
in the lab of tests/test_tanzu_cluster.py (the simulated appliance, the stand-in's Supervisor behind its
HAProxy): the cluster, then the namespace, then the Supervisor; a namespace the run found is never touched.
The planner is also tested on values.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
import pytest
from pyVmomi import vim

from supervisor_fixtures import wait_for
from test_deploy_stage import write_site
from test_tanzu_cluster import effects_of, tanzu  # noqa: F401  (tanzu: the lab of the namespace and cluster stages)
from tkgs_lib.effects import EFFECTS_FILE, account, read_effects
from tkgs_lib.errors import RestError, TkgsError
from tkgs_lib.site import load_site
from tkgs_lib.stages import STAGES, destroy, select_stages, stage_named
from tkgs_lib.stages.flow import StageRun
from tkgs_lib.stages.provided import (ClusterState, KubeconfigFile, Provided, RemovedObjects, RunObject, VCenterObjects,
                                     missing)
from tkgs_lib.vsphere.connection import connect
from tkgs_lib.vsphere.content_api import ContentLibraryApi
from tkgs_simulators.first_boot import FirstBoot

pytestmark = pytest.mark.vcsim


def stage(name, site, session, folder) -> StageRun:
    return StageRun(name, site, folder, vcenter=session, progress=False)


def applied(name, site, session, folder):
    run = stage(name, site, session, folder)
    return run.carry_out(run.plan(), apply=True)


@contextlib.contextmanager
def prepared_and_deployed(vcsim, tmp_path, monkeypatch):
    """The site's prepare and deploy applied into a run folder, the appliance's first boot played:
    (site, session, folder), the session open until the block ends."""
    site, folder = load_site(write_site(vcsim, tmp_path, monkeypatch)), tmp_path / "run"
    with FirstBoot(vcsim), connect(site.vcenter, password=vcsim.password) as session:
        applied("prepare", site, session, folder)
        applied("deploy", site, session, folder)
        yield site, session, folder


def actions(plan) -> list[tuple[str, str]]:
    return [(s.object.split(" (")[0], s.action) for s in plan.steps]


def test_destroy_removes_what_prepare_and_deploy_made_in_reverse_and_a_rerun_plans_nothing(vcsim, tmp_path,
                                                                                             monkeypatch):
    before = vcsim.inventory()
    with prepared_and_deployed(vcsim, tmp_path, monkeypatch) as (site, session, folder):
        record = Provided.load(folder).get(VCenterObjects).entries()
        assert all(o.made for o in record) and [o.kind for o in record] == [
            "port group", "port group", "port group", "tag category", "tag", "tag attachment", "storage policy",
            "subscribed library", "local library", "library item", "VM"]
        assert record[-1].id.startswith("vm-") and record[0].id.startswith("dvportgroup-")  # vCenter's ids
        assert vcsim.inventory() != before

        run = stage("destroy", site, session, folder)
        plan = run.plan()
        assert actions(plan) == [  # the last made first
            ("VM haproxy01", "delete"), ("library item haproxy-v0.1.10", "delete"), ("local library HAProxy", "delete"),
            ("subscribed library Tanzu VMware", "delete"), ("storage policy Tanzu Storage Policy", "delete"),
            ("tag attachment tkgs-storage on datastore LocalDS_0", "delete"), ("tag tkgs-storage", "delete"),
            ("tag category tkgs", "delete"), ("port group tkgs-frontend", "delete"),
            ("port group tkgs-workload", "delete"), ("port group tkgs-management", "delete")]
        outcome = run.carry_out(plan, apply=True)
        assert {s.action for s in outcome.after.steps} == {"gone"}
        said = account(read_effects(folder / EFFECTS_FILE, "destroy"))
        assert said.startswith("Removed: VM haproxy01 (vm-") and "Changed" not in said  # removed, not "created"
        removed = Provided.load(folder).get(RemovedObjects).entries()
        assert {o.id for o in removed} == {o.id for o in record}
        assert destroy.summary(run).endswith("vCenter holds nothing the run made.")
        rerun = stage("destroy", site, session, folder)
        assert {s.action for s in rerun.plan().steps} == {"gone"} and rerun.carry_out(rerun.plan(), True).ran == []
    assert vcsim.inventory() == before


def _portgroup(si, name: str, vlan: int):
    """A port group made by hand on the simulator's switch, as a person makes one in the vSphere Client."""
    content = si.content
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.DistributedVirtualSwitch], True)
    (switch,) = view.view
    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        name=name, type="earlyBinding", numPorts=8,
        defaultPortConfig=vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(
            vlan=vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec(vlanId=vlan, inherited=False)))
    task = switch.AddDVPortgroup_Task([spec])
    while task.info.state not in ("success", "error"):
        pass
    return next(pg for pg in switch.portgroup if pg.name == name)


def test_destroy_never_touches_what_the_run_found_even_when_a_name_matches(vcsim, tmp_path, monkeypatch):
    """A port group and a library of the site's names that were there before the run are kept; and a port
    group the run made, removed and made again by hand under its name, is the hand-made one: kept too."""
    site_file = write_site(vcsim, tmp_path, monkeypatch)
    site, folder = load_site(site_file), tmp_path / "run"
    with vcsim.soap() as si:
        theirs = _portgroup(si, "tkgs-workload", 27)._moId  # the site's name and VLAN: prepare finds it ok
    with connect(site.vcenter, password=vcsim.password) as session:
        api = ContentLibraryApi(session.rest)
        datastore = stage("prepare", site, session, folder).inventory.datastore("LocalDS_0")._moId
        library = api.create_local_library("HAProxy", datastore)  # the site's local library, made by someone
        applied("prepare", site, session, folder)
        record = {o.name: o for o in Provided.load(folder).get(VCenterObjects).entries()}
        assert not record["tkgs-workload"].made and not record["HAProxy"].made and record["haproxy-v0.1.10"].made
        with vcsim.soap() as si:  # the run's management port group, removed and made again by hand
            content = si.content
            view = content.viewManager.CreateContainerView(content.rootFolder, [vim.dvs.DistributedVirtualPortgroup],
                                                           True)
            (made,) = [pg for pg in view.view if pg._moId == record["tkgs-management"].id]
            made.Destroy_Task()
            again = _portgroup(si, "tkgs-management", 26)._moId

        run = stage("destroy", site, session, folder)
        plan = {s.object.split(" (")[0]: s for s in run.plan().steps}
        assert (plan["port group tkgs-workload"].action, plan["port group tkgs-workload"].why) == (
            "keep", "found, not made by this run (stage prepare found it there)")
        assert plan["local library HAProxy"].action == "keep"
        assert plan["library item haproxy-v0.1.10"].action == "delete"
        assert plan["port group tkgs-management"].action == "gone"  # the run's id is gone; the new one is not its
        run.carry_out(run.plan(), apply=True)
        ids = {o.id for o in Provided.load(folder).get(RemovedObjects).entries()}
        assert theirs not in ids and library not in ids and again not in ids
        assert api.library_or_none(library) is not None and api.item_ids(library) == []
    with vcsim.soap() as si:
        content = si.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.dvs.DistributedVirtualPortgroup], True)
        names = {pg._moId: pg.name for pg in view.view}
    assert names[theirs] == "tkgs-workload" and names[again] == "tkgs-management"
    assert "tkgs-frontend" not in names.values()  # what the run made and nobody touched is gone


@pytest.mark.parametrize("stop", ["refused", "Ctrl-C"])
def test_a_destroy_stopped_half_way_says_what_it_removed_and_what_is_left_and_a_rerun_finishes(
        vcsim, tmp_path, monkeypatch, stop):
    before = vcsim.inventory()
    with prepared_and_deployed(vcsim, tmp_path, monkeypatch) as (site, session, folder):
        # Half way through: vCenter refuses the local library's removal, or the person presses Ctrl-C there.
        fault = (RestError("DELETE /rest/com/vmware/content/local-library: vCenter answered HTTP 500", 500)
                 if stop == "refused" else KeyboardInterrupt())
        monkeypatch.setattr(ContentLibraryApi, "delete_library", lambda self, library: (_ for _ in ()).throw(fault))
        run = stage("destroy", site, session, folder)
        with pytest.raises((TkgsError, KeyboardInterrupt)) as failure:
            run.carry_out(run.plan(), apply=True)
        said = account(read_effects(folder / EFFECTS_FILE, "destroy"))  # what the runner says of a stopped stage
        assert said.startswith("Removed: VM haproxy01 (vm-") and "library item haproxy-v0.1.10 (" in said
        if stop == "refused":
            said = failure.value.message
            assert said.startswith("local library HAProxy (") and "HTTP 500" in said
            assert "Removed: VM haproxy01 (vm-" in said and "library item haproxy-v0.1.10 (" in said
            left = said.split(" Left: ", 1)[1]
            assert left.startswith("local library HAProxy (") and "port group tkgs-management (" in left
        monkeypatch.undo()

        rerun = stage("destroy", site, session, folder)  # a rerun: what is gone is gone, the rest goes now
        plan = rerun.plan()
        assert actions(plan)[:3] == [("VM haproxy01", "gone"), ("library item haproxy-v0.1.10", "gone"),
                                     ("local library HAProxy", "delete")]
        rerun.carry_out(plan, apply=True)
    assert vcsim.inventory() == before


def _rows(folder) -> list[tuple[str, str, str]]:
    plan = pd.read_csv(folder / "destroy-plan.csv", keep_default_na=False)
    return [(o.split(" (")[0], a, why) for o, a, why in zip(plan["object"], plan["action"], plan["note"])]


def _api_answers(tanzu, address: str) -> bool:
    """Whether something accepts a connection at ``address``:6443 from the lab (through the appliance)."""
    import socket

    def connect() -> bool:
        try:
            socket.create_connection((address, 6443), timeout=1).close()
            return True
        except OSError:
            return False
    return tanzu.lab.sim.in_lab(connect)


@pytest.mark.slow
def test_destroy_after_namespace_and_cluster_removes_the_cluster_then_the_namespace_never_a_found_one(tanzu,
                                                                                                     tmp_path):
    site, stand_in = str(tanzu.site_file), tanzu.vcsim._stand_in

    def run(folder, *stages: str, apply: bool = True) -> None:
        result = tanzu.cli("run", site, "--stages", *stages, *(["--apply"] if apply else []), "--run-folder",
                           str(folder))
        assert result.returncode == 0, result.stderr[-3000:]

    def record(folder) -> dict:
        return {o.kind: o for o in Provided.load(folder).get(VCenterObjects).entries()}

    # Another run makes the site's namespace: the run below finds it there, and makes its cluster in it.
    theirs, found = tmp_path / "theirs", tmp_path / "found"
    run(theirs, "namespace")
    run(found, "namespace", "cluster")
    made = record(found)
    assert not made["namespace"].made and made["TanzuKubernetesCluster"].made
    assert made["namespace"].id == "tkgs-demo" and made["TanzuKubernetesCluster"].within == "tkgs-demo"
    endpoint = Provided.load(found).get(ClusterState).endpoint.split(":")[0]
    assert _api_answers(tanzu, endpoint)
    run(found, "destroy")
    assert _rows(found) == [
        ("TanzuKubernetesCluster tkgs-demo/tkc-01", "delete", "made by this run (stage cluster)"),
        ("namespace tkgs-demo", "keep", "found, not made by this run (stage namespace found it there)")]
    assert [e.request for e in effects_of(found, "destroy")] == ["delete TanzuKubernetesCluster tkgs-demo/tkc-01"]
    assert [(name, status) for name, _, status in stand_in.namespaces.held()] == [("tkgs-demo", "RUNNING")]
    # The cluster's VMs and its API's virtual IP went with it (the Supervisor's load balancer removed its frontend).
    wait_for(lambda: not _api_answers(tanzu, endpoint), "the cluster's API address to stop answering", 30)
    # The lab's own run (prepare and enable) keeps its Supervisor and storage policy while the found namespace
    # holds them: disabling the Supervisor would remove the namespace with it.
    run(tanzu.folder, "destroy", apply=False)
    rows = {obj: (action, why) for obj, action, why in _rows(tanzu.folder)}
    supervisor = next(obj for obj in rows if obj.startswith("Supervisor "))
    assert rows[supervisor] == ("keep", "in use by namespace tkgs-demo")
    assert rows["storage policy Tanzu Storage Policy"] == ("keep", "in use by namespace tkgs-demo")

    # The other run removes its namespace; then the lab's run makes a namespace and a cluster of its own, and its
    # destroy removes the cluster, then the namespace, then the Supervisor.
    run(theirs, "destroy")
    assert [e.request for e in effects_of(theirs, "destroy")] == ["DELETE /api/vcenter/namespaces/instances/tkgs-demo"]
    assert stand_in.namespaces.held() == []
    run(tanzu.folder, "namespace", "cluster")
    made = record(tanzu.folder)
    assert made["namespace"].made and made["TanzuKubernetesCluster"].made
    kubeconfig = Path(Provided.load(tanzu.folder).get(KubeconfigFile).path)
    assert kubeconfig.exists()
    run(tanzu.folder, "destroy")
    assert not kubeconfig.exists()  # its credentials open nothing any more, and are not left behind
    sent = [e.request for e in effects_of(tanzu.folder, "destroy")]
    assert sent[:2] == ["delete TanzuKubernetesCluster tkgs-demo/tkc-01",
                        "DELETE /api/vcenter/namespaces/instances/tkgs-demo"], sent
    assert sent[2].startswith("POST /api/vcenter/namespace-management/clusters/") and sent[2].endswith(
        "?action=disable"), sent
    assert stand_in.namespaces.held() == [] and stand_in.enabled_clusters() == []
    removed = {o.kind for o in Provided.load(tanzu.folder).get(RemovedObjects).entries()}
    assert {"TanzuKubernetesCluster", "namespace", "Supervisor"} <= removed
    run(tanzu.folder, "destroy")  # a rerun: what the run made is gone, nothing is sent
    assert {action for _, action, _ in _rows(tanzu.folder)} <= {"gone", "keep"}
    assert len(effects_of(tanzu.folder, "destroy")) == len(sent)


# --- the planner, on values ----------------------------------------------------------------------------

def _obj(kind, name, oid, made=True, stage="prepare", within=""):
    return RunObject(kind, name, oid, made, stage, within)


def test_in_use_by_what_stays_is_kept_and_what_the_run_removes_first_does_not_count():
    vm, other = ("VM", "vm-1", ""), ("VM", "vm-9", "")
    pg = _obj("port group", "tkgs-workload", "dvportgroup-1")
    facts = destroy.DestroyFacts([pg, _obj("VM", "haproxy01", "vm-1", stage="deploy")],
                                 present={("port group", "dvportgroup-1", ""): "there", vm: "poweredOn"},
                                 users={("port group", "dvportgroup-1", ""): {vm: "VM haproxy01 (vm-1)"}})
    assert actions(destroy.plan_destroy(facts)) == [("VM haproxy01", "delete"), ("port group tkgs-workload", "delete")]
    facts.users[("port group", "dvportgroup-1", "")][other] = "VM someone-else (vm-9)"
    (vm_row, pg_row) = destroy.plan_destroy(facts).steps
    assert (pg_row.action, pg_row.why) == ("keep", "in use by VM someone-else (vm-9)")
    category = _obj("tag category", "tkgs", "cat-1")
    facts = destroy.DestroyFacts([category], present={("tag category", "cat-1", ""): "there"},
                                 users={("tag category", "cat-1", ""): {("tag", "tag-7", "cat-1"): "tag tag-7"}})
    (row,) = destroy.plan_destroy(facts).steps
    assert (row.action, row.why) == ("keep", "in use by tag tag-7")  # only an empty category goes
    # A namespace the run made keeps while a cluster it did not make is in it; the run's own cluster goes first.
    ns, tkc = ("namespace", "ns1", "domain-c8"), ("TanzuKubernetesCluster", "uid-1", "ns1")
    facts = destroy.DestroyFacts([_obj("namespace", "ns1", "ns1", stage="namespace", within="domain-c8"),
                                  _obj("TanzuKubernetesCluster", "ns1/tkc-01", "uid-1", stage="cluster", within="ns1")],
                                 present={ns: "RUNNING", tkc: "Ready True"},
                                 users={ns: {tkc: "TanzuKubernetesCluster ns1/tkc-01"}})
    assert actions(destroy.plan_destroy(facts)) == [("TanzuKubernetesCluster ns1/tkc-01", "delete"),
                                                    ("namespace ns1", "delete")]
    facts.users[ns][("TanzuKubernetesCluster", "uid-2", "ns1")] = "TanzuKubernetesCluster ns1/theirs"
    assert destroy.plan_destroy(facts).steps[1].why == "in use by TanzuKubernetesCluster ns1/theirs"
    facts = destroy.DestroyFacts([_obj("VirtualMachineService", "lb1", "lb1", stage="later")], present={},
                                 unknown={("VirtualMachineService", "lb1", ""):
                                          "the destroy stage cannot read or remove a VirtualMachineService"})
    (row,) = destroy.plan_destroy(facts).steps
    assert row.action == "keep" and "remove it by hand" in row.why


def test_destroy_runs_only_when_named_and_only_with_the_record(tmp_path):
    """Not one of all the stages (run without --stages, a fleet, the Airflow DAG: each selects through
    select_stages), and refused before its kernel starts without the record of what the run made."""
    named = stage_named("destroy")
    assert named in STAGES and named.on_request
    assert named not in select_stages(None) and select_stages(["destroy"]) == [named]
    from helpers import EXAMPLE_SITE

    (sentence,) = missing(named, tmp_path, load_site(EXAMPLE_SITE))
    assert sentence.startswith("stage 'destroy' needs the record of what this run made and found in vCenter") and \
        "run stage 'prepare' into it first" in sentence
