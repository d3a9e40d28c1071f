"""Stages namespace and cluster (issue 26) against the stand-ins, in one lab for the module: the simulated
appliance (its real HAProxy), the vCenter simulator inside the lab, prepare and enable applied, so the
Supervisor's control plane serves its Kubernetes API and /wcp/login behind the appliance's virtual IP.

The stand-ins are judged by real clients: the stages use the official ``kubernetes`` client's models for
every answer, and Debian's ``kubectl`` (1.20, the package ``kubernetes-client``) reads them with the saved
kubeconfig.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from appliance_fixtures import PASSWORD_ENV
from supervisor_fixtures import wait_for
from test_enable_stage import SCRIPT, VCENTER_ENV, VCENTER_PASSWORD, EnableLab, no_password_in
from test_namespace_management import deploy_appliance_vm
from tkgs_lib.errors import TkgsError

pytestmark = [pytest.mark.slow, pytest.mark.vcsim]


def debian_kubectl() -> str:
    """Debian's kubectl (kubernetes-client): /usr/bin/kubectl when that package installed it, else the copy
    scripts/setup.sh unpacked from it beside the cache (another package owns /usr/bin/kubectl here)."""
    from tkgs_lib.paths import cache_dir

    owner = subprocess.run(["dpkg-query", "-S", "/usr/bin/kubectl"], capture_output=True, text=True).stdout
    if owner.startswith("kubernetes-client:"):
        return "/usr/bin/kubectl"
    unpacked = cache_dir() / "kubernetes-client" / "usr" / "bin" / "kubectl"
    if unpacked.exists():
        return str(unpacked)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("Debian's kubectl (kubernetes-client) is missing: run scripts/setup.sh", pytrace=False)
    pytest.skip("Debian's kubectl (kubernetes-client) is missing: run scripts/setup.sh")


class TanzuLab(EnableLab):
    def __init__(self, lab, vcsim, site_file: Path, cluster: str, folder: Path, kubeconfigs: Path):
        super().__init__(lab, vcsim, site_file, cluster)
        self.folder, self.kubeconfigs = folder, kubeconfigs

    @property
    def env(self) -> dict:
        return {**os.environ, **PASSWORD_ENV, VCENTER_ENV: VCENTER_PASSWORD,
                "TKGS_KUBECONFIG_DIR": str(self.kubeconfigs)}

    def variant(self, name: str, changes: dict) -> Path:
        """The lab's site with ``changes`` (dotted keys) written beside it."""
        data = yaml.safe_load(self.site_file.read_text())
        for dotted, value in changes.items():
            *parents, last = dotted.split(".")
            node = data
            for key in parents:
                node = node[key]
            node[last] = value
        path = self.site_file.with_name(name)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def stage(self, name: str, folder: Path, *, apply: bool = True, site_file: Path | None = None, env=None):
        """A stage as its notebook runs it, in this process (from the lab): its plan, and the error it stopped
        with (None when it passed)."""
        from tkgs_lib.stages.flow import StageRun

        module = __import__(f"tkgs_lib.stages.{name}", fromlist=["x"])

        def work():
            run = StageRun.start(name, str(site_file or self.site_file), str(folder))
            run.progress = False
            plan = None
            try:
                run.connect_vcenter()
                plan = run.plan(run.read())
                run.carry_out(plan, apply)
                rows = module.check_cluster(run) if name == "cluster" else module.check_namespace(run)
                module.conclude(run, rows)
            except TkgsError as exc:
                return plan, exc
            finally:
                run.close()
            return plan, None
        return self.in_lab(work, env)


@pytest.fixture(scope="module")
def tanzu(vcsim_binary, tmp_path_factory):
    from appliance_fixtures import HEALTH_CHECK_MS, start_appliance
    from tkgs_lib.demo import simulator_site_data
    from tkgs_simulators.appliance.netns import entered
    from tkgs_simulators.vcsim import VCenterSimulator

    tmp = tmp_path_factory.mktemp("tanzu")
    lab = start_appliance(tmp)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lab.sim.stop)
        with entered(lab.sim.lab):
            vcsim = VCenterSimulator(binary=vcsim_binary, password=VCENTER_PASSWORD, workdir=tmp / "vcsim").start()
        cleanup.callback(vcsim.stop)
        cleanup.callback(vcsim.stop_supervisors)
        settings = vcsim.supervisor
        settings.config_seconds, settings.load_balancer_timeout, settings.load_balancer_netns = 0.2, 3.0, lab.sim.lab
        settings.reconcile_seconds, settings.health_check_interval_ms = 0.3, HEALTH_CHECK_MS
        data = simulator_site_data(vcsim, base=yaml.safe_load(lab.site_file.read_text()))
        data["workload_management"].update(timeout=60, error_grace=2)
        data["namespace"]["timeout"] = 20
        data["tanzu_cluster"]["timeout"] = 60
        site_file = lab.site_file.with_name("tanzu-site.yaml")
        site_file.write_text(yaml.safe_dump(data, sort_keys=False))
        props = lab.sim.properties
        cluster = lab.sim.in_lab(lambda: deploy_appliance_vm(vcsim, props["network.management_ip"],
                                                              props["loadbalance.service_ip_range"]))
        folder = lab.run_folder  # the appliance's CA and release, as the deploy stage leaves them
        tanzu = TanzuLab(lab, vcsim, site_file, cluster, folder, tmp / "kube")
        result = tanzu.cli("run", str(site_file), "--stages", "prepare", "enable", "--apply", "--run-folder",
                           str(folder))
        assert result.returncode == 0, result.stderr[-3000:]
        yield tanzu


@pytest.fixture
def made(tanzu):
    """The lab once the namespace and the cluster are made: by the tests above on this worker, else here (pytest-xdist
    may give the tests below to a worker that ran neither)."""
    if "service_address" not in json.loads((tanzu.folder / "provided.json").read_text()):
        for stage in ("namespace", "cluster"):
            result = tanzu.cli("run", str(tanzu.site_file), "--stages", stage, "--apply", "--run-folder",
                               str(tanzu.folder))
            assert result.returncode == 0, result.stderr[-3000:]
    return tanzu


def effects_of(folder: Path, stage: str) -> list[dict]:
    from tkgs_lib.effects import read_effects

    return [e for e in read_effects(folder / "effects.jsonl") if e.stage == stage]


def test_namespace_is_made_then_a_rerun_sends_nothing_and_other_values_are_a_conflict(tanzu):
    folder = tanzu.folder
    result = tanzu.cli("run", str(tanzu.site_file), "--stages", "namespace", "--apply", "--run-folder", str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [e.request for e in effects_of(folder, "namespace")] == ["POST /api/vcenter/namespaces/instances"]
    plan = pd.read_csv(folder / "namespace-plan.csv", keep_default_na=False)
    assert list(plan["action"]) == ["create"]
    checks = pd.read_csv(folder / "namespace-checks.csv", keep_default_na=False)
    assert set(checks["status"]) == {"ok"}, checks.to_string()
    [spec] = tanzu.vcsim._stand_in.namespaces.create_requests  # decoded by VMware's Instances.CreateSpec
    assert spec.namespace == "tkgs-demo" and set(spec.vm_service_spec.vm_classes) == {"best-effort-xsmall",
                                                                                        "best-effort-small"}
    assert [(str(a.role), a.subject, a.domain) for a in spec.access_list] == [
        ("EDIT", "administrator", "vsphere.local")]
    assert json.loads((folder / "provided.json").read_text())["namespace"]["status"] == "RUNNING"

    again = tanzu.cli("run", str(tanzu.site_file), "--stages", "namespace", "--apply", "--run-folder", str(folder))
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(effects_of(folder, "namespace")) == 1  # nothing sent
    assert list(pd.read_csv(folder / "namespace-plan.csv")["action"]) == ["ok"]

    other = tanzu.variant("other-namespace.yaml", {"namespace.vm_classes": ["best-effort-small", "guaranteed-small"],
                                                   "namespace.storage_limit_mib": 10240})
    plan, error = tanzu.stage("namespace", folder, site_file=other)
    [step] = plan.steps
    assert step.action == "conflict" and type(error).__name__ == "ConflictError"
    assert ("vm_classes: found best-effort-small, best-effort-xsmall, the site wants best-effort-small, "
                                          "guaranteed-small") in step.why
    assert "limit 10240 (namespace.storage_limit_mib)" in step.why
    assert len(effects_of(folder, "namespace")) == 1


def test_cluster_is_made_its_service_answers_through_haproxy_then_not_and_a_rerun_sends_nothing(tanzu):
    folder = tanzu.folder
    made = tanzu.cli("run", str(tanzu.site_file), "--stages", "namespace", "--apply", "--run-folder", str(folder))
    assert made.returncode == 0, made.stderr[-3000:]  # made by the test above, or now
    result = tanzu.cli("run", str(tanzu.site_file), "--stages", "cluster", "--apply", "--run-folder", str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    notebook = (folder / "08_tanzu_cluster.ipynb").read_text()
    assert "LoadBalancerReady False (WaitingForLoadBalancerIP)" in notebook  # conditions printed as they changed
    assert "Ready True" in notebook
    sent = [e.request for e in effects_of(folder, "cluster")]
    assert sent == ["create TanzuKubernetesCluster tkgs-demo/tkc-01",
                    "create Deployment default/tkgs-probe in cluster tkc-01",
                    "create Service default/tkgs-probe (type LoadBalancer) in cluster tkc-01",
                    "delete Service default/tkgs-probe in cluster tkc-01",
                    "annotate Deployment default/tkgs-probe with the proof"]
    checks = pd.read_csv(folder / "cluster-checks.csv", keep_default_na=False)
    assert set(checks["status"]) == {"ok"}, checks.to_string()
    provided = json.loads((folder / "provided.json").read_text())
    address = provided["service_address"]
    assert address["address"] == "10.64.1.2" and address["answered_by"].startswith("tkgs-probe-")
    assert address["removed"] is True
    assert provided["tanzu_cluster"]["endpoint"] == "10.64.1.1:6443"
    kubeconfig = Path(provided["kubeconfig"]["path"])
    assert kubeconfig.parent == tanzu.kubeconfigs and stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert stat.S_IMODE(kubeconfig.parent.stat().st_mode) == 0o700
    # No token, key or password in any record: the runner scanned for them, and so does this.
    from tkgs_lib.credentials import kubeconfig_secrets

    held = kubeconfig_secrets(kubeconfig)
    assert len(held) >= 3  # the Supervisor's token, the cluster's client key as written and decoded
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in held if s.encode() in data], path.name
    no_password_in(folder)
    assert "10.64.1.2" in (folder / "index.html").read_text()

    again = tanzu.cli("run", str(tanzu.site_file), "--stages", "cluster", "--apply", "--run-folder", str(folder))
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(effects_of(folder, "cluster")) == 5  # nothing sent
    assert set(pd.read_csv(folder / "cluster-plan.csv")["action"]) == {"ok"}


def test_debian_kubectl_reads_the_stand_ins_with_the_saved_kubeconfig(made):
    tanzu = made
    kubectl = debian_kubectl()
    version = subprocess.run([kubectl, "version", "--client", "--short"], capture_output=True, text=True)
    assert "v1.20" in version.stdout, version.stdout + version.stderr
    [kubeconfig] = tanzu.kubeconfigs.glob("*.kubeconfig")

    def run(*args: str) -> str:
        done = tanzu.lab.sim.lab_run([kubectl, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                                     timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    tkc = run("--context", "tkgs-demo", "get", "tkc", "-n", "tkgs-demo")
    assert "tkc-01" in tkc and "v1.21.6---vmware.1-tkg.1.b3d708a" in tkc and "True" in tkc
    assert "tkgs-probe" in run("--context", "tkc-01", "get", "deployments", "-n", "default")
    svc = run("--context", "tkc-01", "get", "svc", "-n", "default")
    assert svc.splitlines()[0].split()[:4] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP"]
    assert "kubernetes" in svc and "tkgs-probe" not in svc  # removed after the proof
    assert "tkc-01-workers-0" in run("--context", "tkc-01", "get", "nodes")
    # kubectl's own LoadBalancer Service: its EXTERNAL-IP one of the appliance's, answering through its HAProxy.
    run("--context", "tkc-01", "expose", "deployment", "tkgs-probe", "-n", "default", "--name", "by-kubectl",
        "--type", "LoadBalancer", "--port", "8081", "--target-port", "8080")
    address = wait_for(lambda: run("--context", "tkc-01", "get", "svc", "by-kubectl", "-n", "default", "-o",
                                   "jsonpath={.status.loadBalancer.ingress[0].ip}").strip(), "an address", 30)
    assert address.startswith("10.64.1.")
    [row] = [line.split() for line in run("--context", "tkc-01", "get", "svc", "-n", "default").splitlines()
             if line.startswith("by-kubectl")]
    assert row[1:2] == ["LoadBalancer"] and row[3] == address and row[4].startswith("8081:")
    assert wait_for(lambda: asked(tanzu, address, 8081), "an answer", 30).startswith("tkgs-probe-")
    run("--context", "tkc-01", "delete", "svc", "by-kubectl", "-n", "default")
    wait_for(lambda: asked(tanzu, address, 8081) is None, "silence after the delete", 30)


def asked(tanzu, address: str, port: int):
    """``GET /hostname`` at ``address:port`` from the lab's frontend side: the answer, or None."""
    import requests

    def ask():
        try:
            said = requests.get(f"http://{address}:{port}/hostname", timeout=2, proxies={"http": None})
        except requests.RequestException:
            return None
        return said.text if said.status_code == 200 else None
    return tanzu.lab.sim.in_lab(ask)


def test_every_answer_reads_into_the_official_clients_models(made):
    tanzu = made
    from kubernetes import client

    from tkgs_lib.stages.cluster import guest_session
    from tkgs_lib.stages.flow import StageRun

    def work():
        run = StageRun.start("cluster", str(tanzu.site_file), str(tanzu.folder))
        try:
            run.connect_vcenter()
            guest = guest_session(run)
            nodes = guest.read("list the nodes", lambda: guest.core.list_node())
            assert isinstance(nodes, client.V1NodeList) and len(nodes.items) == 3
            pods = guest.read("list pods", lambda: guest.core.list_namespaced_pod("default"))
            assert all(isinstance(p, client.V1Pod) and p.status.phase == "Running" for p in pods.items)
            deployment = guest.read("read", lambda: guest.apps.read_namespaced_deployment("tkgs-probe", "default"))
            assert isinstance(deployment, client.V1Deployment) and deployment.status.ready_replicas == 2
            groups = guest.read("groups", lambda: guest.apis.get_api_versions())
            assert isinstance(groups, client.V1APIGroupList)
            missing = guest.read_or_none("read", lambda: guest.core.read_namespaced_service("nothing", "default"))
            assert missing is None  # a Status of reason NotFound, read as the client reads it
        finally:
            run.close()
    tanzu.in_lab(work)


def test_a_wrong_password_at_wcp_login_is_one_sentence(tanzu):
    from tkgs_lib.errors import KubernetesError
    from tkgs_lib.kubernetes.login import supervisor_login

    with pytest.raises(KubernetesError) as refused:
        tanzu.lab.sim.in_lab(lambda: supervisor_login("10.64.1.0", "administrator@vsphere.local", "not-the-password",
                                                      str(tanzu.vcsim.ca_file), password_from="$TKGS_VCENTER_PASSWORD"))
    assert str(refused.value) == (
        "the Supervisor at 10.64.1.0 refused the login of administrator@vsphere.local (HTTP 401 at /wcp/login): the "
        "password in $TKGS_VCENTER_PASSWORD is not administrator@vsphere.local's in vCenter; set the right one and "
        "rerun.")
    assert "not-the-password" not in str(refused.value)


def test_a_cluster_waiting_for_its_load_balancer_address_names_it_in_one_sentence(made, tmp_path):
    tanzu = made
    tanzu.vcsim.supervisor.load_balancer_stalled = True
    try:
        stuck = tanzu.variant("stuck.yaml", {"tanzu_cluster.name": "tkc-stuck", "tanzu_cluster.timeout": 3})
        folder = tmp_path / "stuck"
        import shutil

        shutil.copytree(tanzu.folder, folder)
        _, error = tanzu.stage("cluster", folder, site_file=stuck, env={**tanzu.env})
    finally:
        tanzu.vcsim.supervisor.load_balancer_stalled = False
    assert type(error).__name__ == "ClusterFailed", error
    sentence = str(error)
    assert sentence.startswith("TanzuKubernetesCluster tkgs-demo/tkc-stuck: Tanzu Kubernetes cluster tkc-stuck is not "
                               "Ready after 3 s (tanzu_cluster.timeout is 3): its API waits for an address from the "
                               "Supervisor's load balancer 'haproxy' (the HAProxy appliance)"), sentence
    assert "LoadBalancerReady False (WaitingForLoadBalancerIP" in sentence
    assert "check that workload_management.virtual_ip_ranges has free addresses" in sentence
    assert "\n" not in sentence.split(". Changed:")[0]
