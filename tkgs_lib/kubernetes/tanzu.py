"""Tanzu Kubernetes clusters as the Supervisor's API serves them, and the kubeconfig a person keeps.

The manifest (:func:`cluster_manifest`) follows vmware-tanzu/tanzu-framework's types:
``run.tanzu.vmware.com/v1alpha2`` (vSphere 7.0 Update 3, ``apis/run/v1alpha2/tanzukubernetescluster_types.go``):
``topology.controlPlane{replicas, vmClass, storageClass, tkr.reference.name}``, ``topology.nodePools[]``,
``settings.network{cni, pods.cidrBlocks, services.cidrBlocks}``; ``v1alpha1`` (7.0 Update 1 and 2):
``distribution.version``, ``topology.controlPlane{count, class, storageClass}``, ``topology.workers``. Which
one is what the Supervisor's API discovery serves (:func:`tkc_version`). Its state is ``status.conditions``
(cluster-api conditions: type, status, reason, message); ``status.phase`` is deprecated in v1alpha2 and
only shown. The admin kubeconfig is the Supervisor secret ``<cluster>-kubeconfig``, field ``value``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Optional

import yaml

from ..errors import KubernetesError
from ..files import write_text_whole

__all__ = ["GROUP", "PLURAL", "KNOWN_VERSIONS", "tkc_version", "cluster_manifest", "conditions_of",
           "ready_of", "admin_kubeconfig", "write_kubeconfig", "cluster_differences"]

GROUP, PLURAL = "run.tanzu.vmware.com", "tanzukubernetesclusters"
KNOWN_VERSIONS = ("v1alpha2", "v1alpha1")  # the newest first


def tkc_version(session) -> str:
    """The TanzuKubernetesCluster version the Supervisor serves, the newest of those known here."""
    groups = session.read("list the API groups", lambda: session.apis.get_api_versions())
    for group in groups.groups or []:
        if group.name != GROUP:
            continue
        served = {v.version for v in group.versions or []}
        for version in KNOWN_VERSIONS:
            if version in served:
                return version
        raise KubernetesError(f"{session.name} serves {GROUP} in {', '.join(sorted(served))}, none of "
                              f"{', '.join(KNOWN_VERSIONS)} this runbook writes.")
    raise KubernetesError(f"{session.name} serves no {GROUP} API: is it a Supervisor of vSphere 7.0 Update 1 or "
                          f"later?")


def cluster_manifest(version: str, *, name: str, namespace: str, release: str, control_plane_count: int,
                     control_plane_class: str, worker_count: int, worker_class: str, storage_class: str,
                     pods_cidr: str, services_cidr: str) -> dict:
    """The TanzuKubernetesCluster the site asks for, in ``version``'s shape."""
    network = {"cni": {"name": "antrea"}, "pods": {"cidrBlocks": [pods_cidr]},
               "services": {"cidrBlocks": [services_cidr]}, "serviceDomain": "cluster.local"}
    if version == "v1alpha1":
        spec = {"distribution": {"version": release.replace("---", "+")},
                "topology": {"controlPlane": {"count": control_plane_count, "class": control_plane_class,
                                              "storageClass": storage_class},
                             "workers": {"count": worker_count, "class": worker_class, "storageClass": storage_class}},
                "settings": {"network": network}}
    else:
        tkr = {"reference": {"name": release}}
        spec = {"topology": {"controlPlane": {"replicas": control_plane_count, "vmClass": control_plane_class,
                                              "storageClass": storage_class, "tkr": tkr},
                             "nodePools": [{"name": "workers", "replicas": worker_count, "vmClass": worker_class,
                                            "storageClass": storage_class, "tkr": tkr}]},
                "settings": {"network": network}}
    return {"apiVersion": f"{GROUP}/{version}", "kind": "TanzuKubernetesCluster",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _shape(spec: dict, version: str) -> dict:
    """What of a spec the site decides, in one shape whatever the version."""
    top, net = spec.get("topology") or {}, (spec.get("settings") or {}).get("network") or {}
    cp = top.get("controlPlane") or {}
    if version == "v1alpha1":
        workers = top.get("workers") or {}
        shape = {"control plane": (cp.get("count"), cp.get("class")), "workers": (workers.get("count"),
                                                                                    workers.get("class")),
                 "release": (spec.get("distribution") or {}).get("version", "").replace("+", "---")}
    else:
        pools = top.get("nodePools") or []
        shape = {"control plane": (cp.get("replicas"), cp.get("vmClass")),
                 "workers": (sum(p.get("replicas", 0) for p in pools), pools[0].get("vmClass") if pools else None),
                 "release": ((cp.get("tkr") or {}).get("reference") or {}).get("name", "")}
    shape["storage class"] = cp.get("storageClass")
    shape["pods"] = ((net.get("pods") or {}).get("cidrBlocks") or [None])[0]
    shape["services"] = ((net.get("services") or {}).get("cidrBlocks") or [None])[0]
    return shape


def cluster_differences(found: dict, wanted: dict, version: str) -> list[str]:
    """Each value of ``wanted``'s spec ``found`` does not hold: ``what: found X, the site wants Y``."""
    have, want = _shape(found.get("spec") or {}, version), _shape(wanted["spec"], version)
    return [f"{key}: found {have[key]}, the site wants {want[key]}" for key in want if have.get(key) != want[key]]


def conditions_of(obj: Optional[dict]) -> list[dict]:
    return list(((obj or {}).get("status") or {}).get("conditions") or [])


def ready_of(obj: Optional[dict]) -> str:
    """The Ready condition in words: True, or False with its reason, or "no Ready condition yet"."""
    for c in conditions_of(obj):
        if c.get("type") == "Ready":
            return "True" if c.get("status") == "True" else f"{c.get('status')} ({c.get('reason') or 'no reason'})"
    return "no Ready condition yet"


def admin_kubeconfig(secret) -> dict:
    """The cluster's admin kubeconfig from the Supervisor secret ``<cluster>-kubeconfig`` (a V1Secret)."""
    try:
        return yaml.safe_load(base64.b64decode((secret.data or {})["value"]).decode())
    except (KeyError, ValueError, UnicodeDecodeError, yaml.YAMLError):
        raise KubernetesError(f"the Supervisor secret {secret.metadata.name} holds no kubeconfig in "
                              f"data.value.") from None


def write_kubeconfig(path: Path, contexts: list[tuple[str, dict, dict]], current: str) -> Path:
    """A kubeconfig of ``contexts`` (name, its cluster entry, its user entry), mode 0600 in a folder of mode 0700,
    written whole (never shown)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    config = {"apiVersion": "v1", "kind": "Config", "preferences": {},
              "clusters": [{"name": name, "cluster": cluster} for name, cluster, _ in contexts],
              "users": [{"name": name, "user": user} for name, _, user in contexts],
              "contexts": [{"name": name, "context": {"cluster": name, "user": name}} for name, _, _ in contexts],
              "current-context": current}
    if not path.exists():
        path.touch(mode=0o600)
    os.chmod(path, 0o600)
    write_text_whole(path, yaml.safe_dump(config, sort_keys=False))
    os.chmod(path, 0o600)
    return path
