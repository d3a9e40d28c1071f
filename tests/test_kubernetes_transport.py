"""The Kubernetes transport without a cluster (issue 26): the one boundary enters each change on the ledger and
turns the official client's errors into one sentence; the TanzuKubernetesCluster's shape follows the version
the Supervisor's discovery serves."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tkgs_lib import effects
from tkgs_lib.errors import KubernetesError
from tkgs_lib.kubernetes.session import KubernetesSession
from tkgs_lib.kubernetes.tanzu import cluster_differences, cluster_manifest, tkc_version


def session(tmp_path, server: str = "https://127.0.0.1:1") -> KubernetesSession:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    return KubernetesSession.with_token("the Supervisor 10.64.1.0", server, str(ca), "a-token")


def refusal(status: int, reason: str, message: str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                             "reason": reason, "code": status})
    return error


def test_a_change_is_on_the_ledger_before_it_leaves_and_closed_with_what_came_back(tmp_path):
    with effects.keeping(effects.Ledger()) as ledger, session(tmp_path) as api:
        assert api.change("create TanzuKubernetesCluster ns/tkc", lambda: {"kind": "TanzuKubernetesCluster"})
        with pytest.raises(KubernetesError) as refused:
            api.change("create Service default/x", lambda: (_ for _ in ()).throw(
                refusal(409, "AlreadyExists", 'services "x" already exists')))
        assert api.read("read it", lambda: 1) == 1  # a read is not entered
    assert [(e.request, e.outcome) for e in ledger.effects] == [
        ("create TanzuKubernetesCluster ns/tkc", effects.DONE), ("create Service default/x", effects.REFUSED)]
    assert str(refused.value) == ('the Supervisor 10.64.1.0 refused to create Service default/x (HTTP 409 '
                                  'AlreadyExists): services "x" already exists.')
    assert refused.value.status == 409 and refused.value.reason == "AlreadyExists"


def test_an_api_that_does_not_answer_is_one_sentence_and_nothing_sent(tmp_path):
    with effects.keeping(effects.Ledger()) as ledger, session(tmp_path) as api:
        with pytest.raises(KubernetesError) as lost:
            api.change("create Deployment default/p", lambda: api.apps.create_namespaced_deployment(
                "default", client.V1Deployment(metadata=client.V1ObjectMeta(name="p"), spec=client.V1DeploymentSpec(
                    selector=client.V1LabelSelector(match_labels={"app": "p"}),
                    template=client.V1PodTemplateSpec(spec=client.V1PodSpec(containers=[
                        client.V1Container(name="c", image="i")]))))))
        with pytest.raises(KubernetesError) as unmade:  # the client's models refuse a Deployment without a spec
            api.change("create Deployment default/q", lambda: api.apps.create_namespaced_deployment(
                "default", client.V1Deployment(metadata=client.V1ObjectMeta(name="q"))))
        assert api.read_or_none("read", lambda: (_ for _ in ()).throw(refusal(404, "NotFound", "gone"))) is None
    assert str(lost.value).startswith("could not create Deployment default/p: the Supervisor 10.64.1.0 at "
                                      "https://127.0.0.1:1 did not answer")
    assert str(unmade.value).startswith("could not create Deployment default/q: the request could not be made "
                                        "(ValidationError: ")
    assert [e.outcome for e in ledger.effects] == [effects.NOT_SENT, effects.NOT_SENT]
    assert "a-token" not in repr(api)


class Served:
    """What a Supervisor's discovery answers, as the client reads it."""

    def __init__(self, versions: list[str]) -> None:
        self.name = "the Supervisor 10.64.1.0"
        self.apis = self
        self.versions = versions

    def read(self, what, call):
        return call()

    def get_api_versions(self):
        return client.V1APIGroupList(groups=[client.V1APIGroup(
            name="run.tanzu.vmware.com", versions=[client.V1GroupVersionForDiscovery(
                group_version=f"run.tanzu.vmware.com/{v}", version=v) for v in self.versions])])


def test_the_version_the_supervisor_serves_decides_the_clusters_shape():
    assert tkc_version(Served(["v1alpha1", "v1alpha2"])) == "v1alpha2"  # 7.0 Update 3
    assert tkc_version(Served(["v1alpha1"])) == "v1alpha1"  # 7.0 Update 1 and 2
    with pytest.raises(KubernetesError, match="none of v1alpha2, v1alpha1"):
        tkc_version(Served(["v1beta9"]))
    values = dict(name="tkc-01", namespace="ns", release="v1.21.6---vmware.1-tkg.1.b3d708a", control_plane_count=1,
                  control_plane_class="best-effort-small", worker_count=2, worker_class="best-effort-small",
                  storage_class="tanzu-storage-policy", pods_cidr="172.24.0.0/16", services_cidr="10.112.0.0/16")
    new, old = cluster_manifest("v1alpha2", **values), cluster_manifest("v1alpha1", **values)
    assert new["spec"]["topology"]["controlPlane"] == {"replicas": 1, "vmClass": "best-effort-small",
                                                       "storageClass": "tanzu-storage-policy", "tkr": {
                                                           "reference": {"name": values["release"]}}}
    assert new["spec"]["topology"]["nodePools"][0]["replicas"] == 2
    assert old["spec"]["topology"]["workers"] == {"count": 2, "class": "best-effort-small",
                                                  "storageClass": "tanzu-storage-policy"}
    assert old["spec"]["distribution"]["version"] == "v1.21.6+vmware.1-tkg.1.b3d708a"
    assert cluster_differences(new, new, "v1alpha2") == cluster_differences(old, old, "v1alpha1") == []
    other = cluster_manifest("v1alpha2", **{**values, "worker_count": 3, "pods_cidr": "192.168.0.0/16"})
    assert cluster_differences(other, new, "v1alpha2") == [
        "workers: found (3, 'best-effort-small'), the site wants (2, 'best-effort-small')",
        "pods: found 192.168.0.0/16, the site wants 172.24.0.0/16"]
