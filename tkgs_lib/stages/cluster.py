"""Stage 8, a Tanzu Kubernetes cluster in the namespace, and the proof of what the appliance is for: a
``type: LoadBalancer`` Service answering on an address from ``haproxy.load_balancer_ranges``.

Connect: ``/wcp/login`` at the Supervisor's virtual IP (vCenter's user and password; TLS verified with
vCenter's CA, :mod:`tkgs_lib.kubernetes.login`), then its Kubernetes API on 6443 with the session token,
through the official ``kubernetes`` client (:mod:`tkgs_lib.kubernetes.session`, the boundary that enters
every change on the ledger). Facts: the TanzuKubernetesCluster version the Supervisor serves, the
namespace, its bound VM classes and storage classes, the releases, the cluster; then, once it is Ready,
the kubeconfig kept for the site and the probe workload in the cluster. Plan, four rows in order:

1. the cluster: create it (the manifest in the served version's shape), then wait, its conditions
   printed as they change, until Ready; ok when Ready with the site's values; a conflict naming each
   difference (nothing is changed on a cluster that exists);
2. the kubeconfig: written outside the run folder (``tkgs_lib.paths.kubeconfig_file``, mode 0600), a
   context for the Supervisor's namespace (the session token) and one for the cluster (its admin
   kubeconfig, the Supervisor secret ``<cluster>-kubeconfig``); never in a notebook, HTML or log, and
   the run's secret scan looks for its credentials;
3. the probe workload: a Deployment of Kubernetes' agnhost ``netexec`` (``tanzu_cluster.probe_image``),
   whose ``/hostname`` answers its pod's name;
4. the proof: a LoadBalancer Service for it; its address (``status.loadBalancer.ingress[0].ip``) must lie
   in the site's load-balancer ranges and the appliance's ``anyip-routes.cfg``, and answer an HTTP request
   from here (the frontend side) through the appliance with a probe pod's name; then the Service is
   removed and its address must stop answering; the Deployment is annotated with what was proved, so a
   rerun is all ok and sends nothing.

Checks (``cluster-checks.csv``): the cluster Ready, its API's address one of the load balancer's, the
kubeconfig's place and mode, and each step of the proof.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..errors import ClusterFailed, RestError, TkgsError, VerificationFailed
from ..findings import Finding
from ..planning import Plan, Step
from ..display.tables import Sentence, Table
from . import stage_named
from .provided import (ClusterState, KubeconfigFile, RunObject, ServiceAddress, SupervisorState, VCenterObjects,
                       made_by_run)

STAGE = stage_named("cluster")
PROBE, PROBE_NAMESPACE = "tkgs-probe", "default"
SERVICE_PORT, PROBE_PORT = 80, 8080
PROVED = "tkgs-runbook.io/proved"  # the annotation the proof leaves on the probe Deployment
POLL_SECONDS = 2.0


@dataclass
class ProofResult:
    """What the proof found, for the checks: each part, or None when it did not get that far."""

    address: str = ""
    in_ranges: Optional[str] = None  # the site's range holding it
    in_anyip: Optional[str] = None  # the anyip-routes.cfg line holding it
    answered_by: Optional[str] = None  # the pod that named itself
    stopped: Optional[bool] = None  # the address stopped answering once the Service was removed
    earlier: str = ""  # a rerun: what the annotation says an earlier run proved


@dataclass
class ClusterFacts:
    supervisor: str = ""  # the Supervisor's virtual IP
    version: str = ""  # the TanzuKubernetesCluster version it serves
    namespace: bool = False
    bound: set = field(default_factory=set)  # VM classes bound to the namespace
    storage_classes: set = field(default_factory=set)
    releases: set = field(default_factory=set)
    cluster: Optional[dict] = None  # the TanzuKubernetesCluster
    kubeconfig: str = ""  # where it is kept (the file may not exist)
    kubeconfig_current: bool = False  # it holds the cluster's admin credentials as the Supervisor's secret does
    probe: Any = None  # the probe Deployment (V1Deployment), None: missing, or not read (the cluster not Ready)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        from ..kubernetes.tanzu import ready_of

        return self.cluster is not None and ready_of(self.cluster) == "True"

    def table(self) -> Table:
        from ..kubernetes.tanzu import ready_of

        rows = [{"what": "Supervisor", "value": f"https://{self.supervisor}:6443" if self.supervisor else "unknown"},
                {"what": "TanzuKubernetesCluster API", "value": f"run.tanzu.vmware.com/{self.version or '?'}"},
                {"what": "namespace", "value": "present" if self.namespace else "missing"},
                {"what": "VM classes bound", "value": ", ".join(sorted(self.bound)) or "none"},
                {"what": "storage classes", "value": ", ".join(sorted(self.storage_classes)) or "none"},
                {"what": "releases", "value": ", ".join(sorted(self.releases)) or "none"},
                {"what": "cluster", "value": "missing" if self.cluster is None else f"Ready {ready_of(self.cluster)}"},
                {"what": "kubeconfig",
                 "value": f"{self.kubeconfig} ({'current' if self.kubeconfig_current else 'to write'})"},
                {"what": "probe workload", "value": "present" if self.probe is not None else "missing"}]
        return Table(rows, ["what", "value"])

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def __repr__(self) -> str:
        return self.table().to_text()


# --- the sessions --------------------------------------------------------------------------------

def guest_session(run):
    """The cluster's API, as its admin kubeconfig's context reaches it (through the load balancer)."""
    import base64

    import yaml

    from ..kubernetes.session import KubernetesSession

    if "cluster" in run.sessions:
        return run.sessions["cluster"]
    tkc = run.site.tanzu_cluster
    path = _kubeconfig_path(run)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == tkc.name)
    user = next(u["user"] for u in config["users"] if u["name"] == tkc.name)

    def text(data: str) -> str:
        return base64.b64decode(data).decode()

    session = KubernetesSession.with_client_certificate(
        f"cluster {tkc.name}", cluster["server"], text(cluster["certificate-authority-data"]),
        text(user["client-certificate-data"]), text(user["client-key-data"]))
    run.sessions["cluster"] = session
    return session


def _kubeconfig_path(run) -> Path:
    from ..paths import kubeconfig_file

    return kubeconfig_file(run.site.site, run.site.namespace.name, run.site.tanzu_cluster.name)


# --- read ----------------------------------------------------------------------------------------

def read_facts(run) -> ClusterFacts:
    from ..kubernetes.tanzu import GROUP, PLURAL, tkc_version

    site, tkc = run.site, run.site.tanzu_cluster
    facts = ClusterFacts()
    if tkc is None or site.namespace is None:
        facts.findings.append(Finding.warning("tanzu_cluster", "the site has no tanzu_cluster block (or no namespace "
                                                               "block), so this stage makes nothing.",
                                              "add both blocks (`tkgs-runbook fields` lists their keys)."))
        return facts
    session = run.connect_supervisor()
    facts.supervisor, ns = session.address, site.namespace.name
    facts.version = tkc_version(session)
    facts.namespace = session.read_or_none(f"read namespace {ns}", lambda: session.core.read_namespace(ns)) is not None
    if not facts.namespace:
        facts.findings.append(Finding.error("namespace.name", f"the Supervisor has no namespace {ns}.",
                                            "run the namespace stage with apply first."))
        return facts
    custom = session.custom
    bindings = session.read("list the VM class bindings", lambda: custom.list_namespaced_custom_object(
        "vmoperator.vmware.com", "v1alpha1", ns, "virtualmachineclassbindings"))
    facts.bound = {b["classRef"]["name"] for b in bindings.get("items", [])}
    classes = session.read("list the storage classes", lambda: _storage_api(session).list_storage_class())
    facts.storage_classes = {c.metadata.name for c in classes.items}
    releases = session.read("list the Tanzu Kubernetes releases", lambda: custom.list_cluster_custom_object(
        GROUP, "v1alpha1", "tanzukubernetesreleases"))
    facts.releases = {r["metadata"]["name"] for r in releases.get("items", [])}
    _desk_against_supervisor(run, facts)
    facts.cluster = session.read_or_none(f"read TanzuKubernetesCluster {ns}/{tkc.name}",
                                         lambda: custom.get_namespaced_custom_object(GROUP, facts.version, ns, PLURAL,
                                                                                     tkc.name))
    facts.kubeconfig = str(_kubeconfig_path(run))
    if facts.ready:
        facts.kubeconfig_current = _kubeconfig_current(run, session)
        if facts.kubeconfig_current:
            guest = guest_session(run)
            facts.probe = guest.read_or_none(f"read Deployment {PROBE_NAMESPACE}/{PROBE}",
                                             lambda: guest.apps.read_namespaced_deployment(PROBE, PROBE_NAMESPACE))
    return facts


def _storage_api(session):
    from kubernetes import client

    return client.StorageV1Api(session.api_client)


def _desk_against_supervisor(run, facts: ClusterFacts) -> None:
    """The site's cluster against what the Supervisor serves: its release, its classes bound, its storage class."""
    from ..site.tanzu import cluster_storage_class

    tkc = run.site.tanzu_cluster
    if facts.releases and tkc.release not in facts.releases:
        facts.findings.append(Finding.error("tanzu_cluster.release", f"the Supervisor offers no release {tkc.release}.",
                                            f"write one of {', '.join(sorted(facts.releases))}."))
    for key in ("control_plane_class", "worker_class"):
        name = getattr(tkc, key)
        if name not in facts.bound:
            bound = ", ".join(sorted(facts.bound)) or "none"
            facts.findings.append(Finding.error(f"tanzu_cluster.{key}", f"the VM class {name} is not bound to "
                                                                        f"namespace {run.site.namespace.name} "
                                                                        f"(bound: {bound}).",
                                                "add it to namespace.vm_classes and rerun the namespace stage, or "
                                                "write a bound class."))
    wanted = cluster_storage_class(run.site)
    if wanted not in facts.storage_classes:
        held = ", ".join(sorted(facts.storage_classes)) or "none"
        facts.findings.append(Finding.error("tanzu_cluster.storage_class", f"the namespace holds no storage class "
                                                                           f"{wanted} (it holds {held}).",
                                            "give the namespace storage.policy (the namespace stage), or write the "
                                            "class it holds."))


def _kubeconfig_current(run, session) -> bool:
    """Whether the kept kubeconfig holds the cluster's admin context as the Supervisor's secret does."""
    import yaml

    from ..kubernetes.tanzu import admin_kubeconfig

    path = _kubeconfig_path(run)
    tkc = run.site.tanzu_cluster
    try:
        kept = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    secret = session.read_or_none(f"read Secret {tkc.name}-kubeconfig", lambda: session.core.read_namespaced_secret(
        f"{tkc.name}-kubeconfig", run.site.namespace.name))
    if secret is None or not isinstance(kept, dict):
        return False
    admin = admin_kubeconfig(secret)
    cluster = next((c["cluster"] for c in kept.get("clusters") or [] if c.get("name") == tkc.name), None)
    user = next((u["user"] for u in kept.get("users") or [] if u.get("name") == tkc.name), None)
    return cluster == admin["clusters"][0]["cluster"] and user == admin["users"][0]["user"] and stat.S_IMODE(
        path.stat().st_mode) == 0o600


def provides(run, facts: ClusterFacts) -> list:
    from ..kubernetes.tanzu import ready_of

    tkc = run.site.tanzu_cluster
    if tkc is None or run.site.namespace is None or not facts.version:
        return []
    endpoints = ((facts.cluster or {}).get("status") or {}).get("apiEndpoints") or []
    out: list = [ClusterState(tkc.name, run.site.namespace.name, f"run.tanzu.vmware.com/{facts.version}",
                              ready_of(facts.cluster) if facts.cluster else "missing",
                              f"{endpoints[0]['host']}:{endpoints[0]['port']}" if endpoints else "")]
    if facts.cluster is not None:  # by its uid: a cluster of the same name made later is another one
        name = f"{run.site.namespace.name}/{tkc.name}"
        out.append(VCenterObjects.of([RunObject(
            "TanzuKubernetesCluster", name, facts.cluster["metadata"]["uid"],
            made_by_run(run.output, f"TanzuKubernetesCluster {name}"), STAGE.name, within=run.site.namespace.name)]))
    if facts.kubeconfig_current:
        out.append(KubeconfigFile(facts.kubeconfig, [run.site.namespace.name, tkc.name]))
    proved = _proved(facts)
    if proved is not None:
        out.append(proved)
    return out


def _proved(facts: ClusterFacts) -> Optional[ServiceAddress]:
    """What the annotation on the probe Deployment says was proved, as a ServiceAddress."""
    import json

    annotations = (facts.probe.metadata.annotations or {}) if facts.probe is not None else {}
    try:
        said = json.loads(annotations.get(PROVED, ""))
        return ServiceAddress(said["service"], said["address"], int(said["port"]), said["answered_by"], said["removed"])
    except (ValueError, KeyError, TypeError):
        return None


# --- plan ----------------------------------------------------------------------------------------

def manifest(run, facts: ClusterFacts) -> dict:
    from ..kubernetes.tanzu import cluster_manifest
    from ..site.tanzu import cluster_storage_class

    tkc = run.site.tanzu_cluster
    return cluster_manifest(facts.version, name=tkc.name, namespace=run.site.namespace.name, release=tkc.release,
                            control_plane_count=tkc.control_plane_count, control_plane_class=tkc.control_plane_class,
                            worker_count=tkc.worker_count, worker_class=tkc.worker_class,
                            storage_class=cluster_storage_class(run.site), pods_cidr=tkc.pods_cidr,
                            services_cidr=tkc.services_cidr)


def plan(run, facts: ClusterFacts) -> Plan:
    from ..kubernetes.tanzu import cluster_differences, conditions_of

    result = Plan(STAGE.title, findings=list(facts.findings))
    tkc = run.site.tanzu_cluster
    if tkc is None or run.site.namespace is None or [f for f in facts.findings if f.is_error]:
        return result
    ns = run.site.namespace.name
    wanted = manifest(run, facts)
    obj = f"TanzuKubernetesCluster {ns}/{tkc.name}"
    desired = (f"Ready: {tkc.control_plane_count} control plane ({tkc.control_plane_class}), {tkc.worker_count} "
               f"workers ({tkc.worker_class}), release {tkc.release}, pods {tkc.pods_cidr}, services "
               f"{tkc.services_cidr}")
    steps = []
    if facts.cluster is None:
        steps.append(Step.create(obj, desired, lambda: create_cluster(run, facts)))
    else:
        different = cluster_differences(facts.cluster, wanted, facts.version)
        found = "; ".join(f"{c.get('type')} {c.get('status')}" + (f" ({c.get('reason')})" if c.get("reason") else "")
                          for c in conditions_of(facts.cluster)) or "no conditions yet"
        if different:
            steps.append(Step.conflict(obj, desired, found, "it exists with other values: " + "; ".join(different)
                                       + ". Nothing is changed on a cluster that exists: change the site to match, "
                                         "or delete the cluster and rerun with apply."))
        elif not facts.ready:
            steps.append(Step.conflict(obj, desired, found,
                                       f"it is not Ready: {what_it_waits_for(facts.cluster, run)}"))
        else:
            steps.append(Step.ok(obj, desired, found))
    kubeconfig = f"kubeconfig {facts.kubeconfig}"
    contexts = f"contexts {ns} (the Supervisor) and {tkc.name} (the cluster's admin), mode 0600, outside the run folder"
    steps.append(Step.ok(kubeconfig, contexts, "current") if facts.kubeconfig_current else
                 Step.create(kubeconfig, contexts, lambda: save_kubeconfig(run)))
    probe = f"Deployment {PROBE_NAMESPACE}/{PROBE} in cluster {tkc.name}"
    proof = f"LoadBalancer Service {PROBE_NAMESPACE}/{PROBE} in cluster {tkc.name}"
    proof_wanted = (f"an address of haproxy.load_balancer_ranges answering {SERVICE_PORT} through the appliance "
                    f"with a pod's name; then removed, and no longer answering")
    steps.append(Step.ok(probe, f"{tkc.probe_image}, 2 replicas", "present") if facts.probe is not None else
                 Step.create(probe, f"{tkc.probe_image}, 2 replicas", lambda: create_probe(run)))
    proved = _proved(facts)
    steps.append(Step.ok(proof, proof_wanted, f"proved: {proved.address} answered by {proved.answered_by}")
                 if proved is not None and proved.removed else
                 Step.create(proof, proof_wanted, lambda: prove_service(run), found="not proved"))
    return result.extend(Plan(STAGE.title, steps))


# --- apply ---------------------------------------------------------------------------------------

def what_it_waits_for(obj: Optional[dict], run) -> str:
    """In one sentence: the conditions not True, and for WaitingForLoadBalancerIP, what to check."""
    from ..kubernetes.tanzu import conditions_of

    waiting = [c for c in conditions_of(obj) if c.get("status") != "True"]
    if not waiting:
        return "it reports no condition yet (the Supervisor has not begun on it)."
    said = "; ".join(f"{c.get('type')} {c.get('status')} ({c.get('reason') or 'no reason'}"
                     f"{': ' + c['message'] if c.get('message') else ''})" for c in waiting)
    if any(c.get("reason") == "WaitingForLoadBalancerIP" for c in waiting):
        balancer = run.network.supervisor.load_balancer_id if run.network.supervisor is not None else "haproxy"
        return (f"its API waits for an address from the Supervisor's load balancer '{balancer}' (the HAProxy "
                f"appliance), which gave its VirtualMachineService none: check that "
                f"workload_management.virtual_ip_ranges has free addresses inside haproxy.load_balancer_ranges and the "
                f"appliance's /etc/vmware/anyip-routes.cfg (the verify stage), that the appliance's Data Plane API "
                f"answers the Supervisor (the enable stage's checks), and that the frontend and workload networks "
                f"route to each other ({said}).")
    return f"{said}."


def create_cluster(run, facts: ClusterFacts):
    """The TanzuKubernetesCluster made, then the wait until Ready, its conditions printed as they change."""
    from ..kubernetes.tanzu import GROUP, PLURAL, conditions_of, ready_of
    from ..polling import wait_until

    tkc, ns = run.site.tanzu_cluster, run.site.namespace.name
    session = run.connect_supervisor()
    body = manifest(run, facts)
    session.change(f"create TanzuKubernetesCluster {ns}/{tkc.name}",
                   lambda: session.custom.create_namespaced_custom_object(GROUP, facts.version, ns, PLURAL, body))
    print(f"Asked the Supervisor for cluster {tkc.name} ({GROUP}/{facts.version}); waiting up to {tkc.timeout} s for "
          f"Ready.", flush=True)
    last: list = [None]

    def read():
        return session.read(f"read TanzuKubernetesCluster {ns}/{tkc.name}",
                            lambda: session.custom.get_namespaced_custom_object(GROUP, facts.version, ns, PLURAL,
                                                                                tkc.name))

    def said(obj, elapsed) -> None:
        now = tuple((c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in conditions_of(obj))
        if now != last[0]:
            last[0] = now
            phase = (obj.get("status") or {}).get("phase") or "no phase"
            shown = "; ".join(f"{t} {s}" + (f" ({r})" if r else "") for t, s, r, _ in now) or "no conditions yet"
            print(f"  {elapsed:5.1f} s  {phase}: {shown}", flush=True)

    def timed_out(obj, elapsed: float) -> Exception:
        return ClusterFailed(f"Tanzu Kubernetes cluster {tkc.name} is not Ready after {elapsed:.0f} s "
                             f"(tanzu_cluster.timeout is {tkc.timeout}): {what_it_waits_for(obj, run)}")

    def done(obj) -> bool:
        phase = (obj.get("status") or {}).get("phase")
        if phase == "failed":
            raise ClusterFailed(f"Tanzu Kubernetes cluster {tkc.name} failed: {what_it_waits_for(obj, run)}")
        return ready_of(obj) == "True"

    obj = wait_until(read, done, timeout=tkc.timeout, timed_out=timed_out, interval=0.2,
                     max_interval=max(0.2, min(POLL_SECONDS, tkc.timeout / 10)), on_poll=said,
                     progress=f"waiting for cluster {tkc.name}", show_progress=run.progress)
    facts.cluster = obj
    return obj


def save_kubeconfig(run) -> Path:
    """The kubeconfig: the Supervisor's namespace (its token) and the cluster (its admin credentials)."""
    from ..credentials import plain
    from ..kubernetes.tanzu import admin_kubeconfig, write_kubeconfig

    session = run.connect_supervisor()
    tkc, ns = run.site.tanzu_cluster, run.site.namespace.name
    secret = session.read(f"read Secret {ns}/{tkc.name}-kubeconfig", lambda: session.core.read_namespaced_secret(
        f"{tkc.name}-kubeconfig", ns))
    admin = admin_kubeconfig(secret)
    import base64

    ca = base64.b64encode(Path(run.supervisor_ca_file()).read_bytes()).decode()
    supervisor = ({"server": f"https://{session.address}:6443", "certificate-authority-data": ca},
                  {"token": plain(session.token)})
    path = write_kubeconfig(_kubeconfig_path(run), [(ns, *supervisor),
                                                     (tkc.name, admin["clusters"][0]["cluster"],
                                                      admin["users"][0]["user"])], tkc.name)
    print(f"Saved the kubeconfig as {path} (mode 0600; contexts {ns} and {tkc.name}): "
          f"`kubectl --kubeconfig {path} get svc`.", flush=True)
    run.sessions.pop("cluster", None)
    return path


def create_probe(run):
    from kubernetes import client

    guest = guest_session(run)
    tkc = run.site.tanzu_cluster
    labels = {"app": PROBE}
    deployment = client.V1Deployment(
        api_version="apps/v1", kind="Deployment",
        metadata=client.V1ObjectMeta(name=PROBE, namespace=PROBE_NAMESPACE, labels=labels),
        spec=client.V1DeploymentSpec(replicas=2, selector=client.V1LabelSelector(match_labels=labels),
                                     template=client.V1PodTemplateSpec(
                                         metadata=client.V1ObjectMeta(labels=labels),
                                         spec=client.V1PodSpec(containers=[client.V1Container(
                                             name="netexec", image=tkc.probe_image,
                                             args=["netexec", f"--http-port={PROBE_PORT}"],
                                             ports=[client.V1ContainerPort(container_port=PROBE_PORT)])]))))
    return guest.change(f"create Deployment {PROBE_NAMESPACE}/{PROBE} in cluster {tkc.name}",
                        lambda: guest.apps.create_namespaced_deployment(PROBE_NAMESPACE, deployment))


def _answer(address: str, timeout: float = 3.0) -> Optional[str]:
    """What ``http://address:80/hostname`` answers from here, or None when nothing does."""
    import requests

    try:
        response = requests.get(f"http://{address}:{SERVICE_PORT}/hostname", timeout=timeout,
                                proxies={"http": None, "https": None})
    except requests.RequestException:
        return None
    return response.text.strip() if response.status_code == 200 else None


def prove_service(run) -> ProofResult:
    """The LoadBalancer Service made, its address checked and asked, then the Service removed and its address
    seen to stop answering; the probe Deployment annotated with what was proved."""
    import json

    from kubernetes import client

    from ..polling import wait_until

    guest, tkc = guest_session(run), run.site.tanzu_cluster
    proof = ProofResult()
    run.proof = proof
    service = client.V1Service(
        api_version="v1", kind="Service", metadata=client.V1ObjectMeta(name=PROBE, namespace=PROBE_NAMESPACE),
        spec=client.V1ServiceSpec(type="LoadBalancer", selector={"app": PROBE}, ports=[client.V1ServicePort(
            name="http", port=SERVICE_PORT, target_port=PROBE_PORT, protocol="TCP")]))
    guest.change(f"create Service {PROBE_NAMESPACE}/{PROBE} (type LoadBalancer) in cluster {tkc.name}",
                 lambda: guest.core.create_namespaced_service(PROBE_NAMESPACE, service))
    try:
        print(f"Asked cluster {tkc.name} for a LoadBalancer Service; waiting for its address.", flush=True)

        def address_of(svc) -> str:
            ingress = (svc.status.load_balancer.ingress if svc.status and svc.status.load_balancer else None) or []
            return ingress[0].ip if ingress else ""

        def read_service():
            return guest.read(f"read Service {PROBE_NAMESPACE}/{PROBE}",
                              lambda: guest.core.read_namespaced_service(PROBE, PROBE_NAMESPACE))

        held = wait_until(read_service, lambda svc: bool(address_of(svc)), timeout=tkc.timeout, interval=0.2,
            max_interval=POLL_SECONDS, timed_out=lambda svc, elapsed: ClusterFailed(
                f"the LoadBalancer Service {PROBE_NAMESPACE}/{PROBE} of cluster {tkc.name} has no address after "
                f"{elapsed:.0f} s (tanzu_cluster.timeout): the Supervisor's load balancer gave its "
                f"VirtualMachineService none; check that workload_management.virtual_ip_ranges has free addresses "
                f"and that the appliance's Data Plane API answers the Supervisor (the enable stage's checks)."),
            progress="waiting for the Service's address", show_progress=run.progress)
        proof.address = address_of(held)
        print(f"  its address: {proof.address}", flush=True)
        proof.in_ranges = _in_site_ranges(run, proof.address)
        proof.in_anyip = _in_anyip(run, proof.address)
        pods = {p.metadata.name for p in guest.read("list the probe's pods", lambda: guest.core.list_namespaced_pod(
            PROBE_NAMESPACE, label_selector=f"app={PROBE}")).items}
        answered = wait_until(lambda: _answer(proof.address), lambda said: said in pods, timeout=min(60, tkc.timeout),
                              interval=0.2, max_interval=1.0, timed_out=lambda said, elapsed: ClusterFailed(
                                  f"the LoadBalancer Service's address {proof.address} did not answer "
                                  f"http://{proof.address}:{SERVICE_PORT}/hostname with a probe pod's name within "
                                  f"{elapsed:.0f} s from here (it said {said!r}): check that the appliance's HAProxy "
                                  f"serves it (the verify stage) and that the workload network routes to the frontend "
                                  f"network."))
        proof.answered_by = answered
        print(f"  http://{proof.address}:{SERVICE_PORT}/hostname answered through the appliance: {answered}",
              flush=True)
    finally:
        guest.change(f"delete Service {PROBE_NAMESPACE}/{PROBE} in cluster {tkc.name}",
                     lambda: guest.core.delete_namespaced_service(PROBE, PROBE_NAMESPACE))
    if proof.address:
        wait_until(lambda: _answer(proof.address, timeout=1.0), lambda said: said is None, timeout=min(60, tkc.timeout),
                   interval=0.2, max_interval=1.0, timed_out=lambda said, elapsed: ClusterFailed(
                       f"{proof.address} still answers {elapsed:.0f} s after its Service was removed ({said!r}): the "
                       f"Supervisor's load balancer did not remove its frontend from the appliance."))
        proof.stopped = True
        print(f"  removed; {proof.address} no longer answers.", flush=True)
    said = json.dumps({"service": f"{PROBE_NAMESPACE}/{PROBE}", "address": proof.address, "port": SERVICE_PORT,
                       "answered_by": proof.answered_by, "removed": True})
    guest.change(f"annotate Deployment {PROBE_NAMESPACE}/{PROBE} with the proof",
                 lambda: guest.apps.patch_namespaced_deployment(PROBE, PROBE_NAMESPACE, {"metadata": {
                     "annotations": {PROVED: said}}}))
    run.provide(ServiceAddress(f"{PROBE_NAMESPACE}/{PROBE}", proof.address, SERVICE_PORT, proof.answered_by, True))
    return proof


def _in_site_ranges(run, address: str) -> Optional[str]:
    from netaddr import IPAddress

    value = int(IPAddress(address))
    for r in run.network.load_balancer_ranges:
        if r.first <= value <= r.last:
            return f"{r.text} ({r.path})"
    return None


def _in_anyip(run, address: str) -> Optional[str]:
    import ipaddress

    from ..appliance.commands import gather
    from ..appliance.facts import ANYIP_FILE, config_file

    held = gather(run.connect_appliance(), config_file(ANYIP_FILE))
    for line in held.lines:
        try:
            if ipaddress.IPv4Address(address) in ipaddress.IPv4Network(line.strip()):
                return f"{line.strip()}, a line of {ANYIP_FILE}"
        except ValueError:
            continue
    return None


# --- after apply ---------------------------------------------------------------------------------

def cluster_table(run, facts: ClusterFacts) -> Table:
    from ..kubernetes.tanzu import conditions_of

    if facts.cluster is None:
        return Table([], ["what", "value"], empty="No cluster: the site has none, or a dry run made none.")
    status = facts.cluster.get("status") or {}
    rows = [{"what": "phase (deprecated in v1alpha2)", "value": status.get("phase") or "none"}]
    for c in conditions_of(facts.cluster):
        why = f" ({c.get('reason')}: {c.get('message', '')})" if c.get("reason") else ""
        rows.append({"what": f"condition {c.get('type')}", "value": f"{c.get('status')}{why}"})
    rows += [{"what": "API endpoint", "value": f"{e['host']}:{e['port']}"} for e in status.get("apiEndpoints") or []]
    return Table(rows, ["what", "value"])


def reports(run, facts: ClusterFacts) -> dict[str, Table]:
    return {"the cluster, as the Supervisor reports it": cluster_table(run, facts)}


def check_cluster(run, facts: Optional[ClusterFacts] = None) -> list:
    """The cluster and the proof, as rows of checks; saved as ``cluster-checks.csv``."""
    from ..appliance.checks import Check, checks_table
    from ..kubernetes.tanzu import ready_of

    facts = run.latest_read() if facts is None else facts
    target = run.output / STAGE.checks_file
    if run.site.tanzu_cluster is None or facts.cluster is None:
        target.unlink(missing_ok=True)
        return []
    tkc = run.site.tanzu_cluster
    rows = [Check(f"cluster {tkc.name} Ready", "True", ready_of(facts.cluster),
                  "ok" if facts.ready else "failed", "" if facts.ready else what_it_waits_for(facts.cluster, run))]
    endpoints = (facts.cluster.get("status") or {}).get("apiEndpoints") or []
    host = endpoints[0]["host"] if endpoints else ""
    inside = _in_site_ranges(run, host) if host else None
    rows.append(Check(f"cluster {tkc.name}'s API address", "an address of haproxy.load_balancer_ranges",
                      f"{host}:6443, in {inside}" if inside else (host or "none"), "ok" if inside else "failed",
                      "" if inside else "the Supervisor's load balancer must give the cluster's API an address."))
    path = Path(facts.kubeconfig)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    outside = not str(path.resolve()).startswith(str(run.output.resolve()) + os.sep)
    good = mode == 0o600 and outside and facts.kubeconfig_current
    rows.append(Check("kubeconfig", "mode 0600, outside the run folder, the cluster's admin context current",
                      f"{path}, mode {oct(mode) if mode is not None else 'missing'}", "ok" if good else "failed",
                      "" if good else "rerun the stage with apply to write it again."))
    proof: Optional[ProofResult] = getattr(run, "proof", None)
    if proof is None:
        earlier = _proved(facts)
        if earlier is None:
            rows.append(Check("LoadBalancer Service", "proved", "not proved", "not checked",
                              "run the stage with apply: it makes the Service and proves it."))
        else:
            rows.append(Check(f"LoadBalancer Service {earlier.service}", "answered through the appliance, then "
                                                                          "removed and silent",
                              f"proved by an earlier run: {earlier.address}:{earlier.port} answered by "
                              f"{earlier.answered_by}; removed, then no longer answering", "ok"))
    else:
        def row(check: str, expected: str, found: Optional[object], fix: str) -> Check:
            return Check(check, expected, str(found) if found else "no", "ok" if found else "failed",
                         "" if found else fix)
        rows += [row(f"Service address {proof.address} in the site's ranges", "inside haproxy.load_balancer_ranges",
                     proof.in_ranges, "workload_management.virtual_ip_ranges must lie inside "
                                      "haproxy.load_balancer_ranges."),
                 row(f"Service address {proof.address} in anyip-routes.cfg", "inside a line of the file",
                     proof.in_anyip, "the repair stage writes the site's ranges into the file."),
                 row(f"HTTP to {proof.address}:{SERVICE_PORT} through the appliance", "a probe pod's name",
                     proof.answered_by and f"answered by {proof.answered_by}", "see the verify stage's HAProxy rows."),
                 row(f"{proof.address} after the Service was removed", "no answer",
                     "no answer" if proof.stopped else None, "the load balancer kept the Service's frontend.")]
    checks_table(rows).to_csv(target)
    return rows


def conclude(run, rows: list) -> Sentence:
    if not rows:
        return Sentence("No cluster to check.")
    failed = [c for c in rows if c.status in ("failed", "not checked")]
    if not failed:
        return Sentence(f"All {len(rows)} checks of the cluster and its LoadBalancer Service passed.")
    lines = "\n".join(f"  - {c.check}: {c.found}. {c.fix}" for c in failed)
    raise VerificationFailed(f"{len(failed)} of {len(rows)} checks of the cluster failed or could not run:\n{lines}",
                             failed)


__all__ = ["STAGE", "ClusterFacts", "ProofResult", "read_facts", "plan", "reports", "check_cluster", "conclude",
           "provides", "what_it_waits_for"]
