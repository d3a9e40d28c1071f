"""The ``namespace`` and ``tanzu_cluster`` blocks checked at the desk: what vCenter or the Supervisor would
refuse, or a cluster would get wrong, each finding at the field at fault. Pure: nothing is asked of vCenter.

Where the rules come from:

- VMware's API reference (``vcenter namespaces Instances.CreateSpec``): a namespace's name is a DNS label
  (RFC 1123, at most 63); an access entry is a subject, its domain, USER or GROUP and a role, EDIT or VIEW,
  OWNER only from API 7.0.2.00100 (``Access.Role``); ``vm_service_spec`` (the VM classes bound to it) is
  from 7.0.2.00100 too; what the site's vCenter allows is the namespace stage's to say, once it has read
  vCenter's API version (:func:`version_findings`);
- vmware-tanzu/tanzu-framework ``apis/run/v1alpha2/tanzukubernetescluster_types.go``: the cluster's pods
  default to 192.168.0.0/16 (antrea) and its services to 10.96.0.0/12; its control plane "must have an
  odd number of nodes"; each node pool's ``vmClass`` is a VirtualMachineClass bound to the namespace and
  its ``storageClass`` one of the namespace's storage classes (``kubectl describe ns``);
- the field (after-enable.md, faults 1 and 16): a pod or service network overlapping a site network, the
  Supervisor's addresses, DNS, NTP or vCenter makes the cluster's nodes route those addresses into the
  cluster: the defaults collide with any 192.168.x site.

A namespace's storage policy reaches Kubernetes as a storage class named after it, in lower case with
each run of other characters as one '-' (vSphere with Tanzu's "Tanzu Storage Policy" is the class
``tanzu-storage-policy``): :func:`storage_class_of`.
"""

from __future__ import annotations

import re
from typing import Optional

from netaddr import AddrFormatError, IPAddress, IPNetwork

from ..findings import Finding
from .model import Site
from .network import NetworkLayout
from .workload_management import _as_dns_label, _dns_label_problem

__all__ = ["tanzu_findings", "version_findings", "storage_class_of", "cluster_storage_class", "dns_label_problem",
           "OWNER_FROM", "VM_SERVICE_FROM", "api_at_least"]

NS, TKC = "namespace", "tanzu_cluster"
OWNER_FROM = VM_SERVICE_FROM = "7.0.2.00100"  # vSphere 7.0 Update 2a
_SUBJECT = re.compile(r"^[^\s@\\/]+$")
MAX_TIMEOUT = 86400


dns_label_problem = _dns_label_problem  # why a name is no DNS label (RFC 1123), or ""


def storage_class_of(policy: str) -> str:
    """The storage class a namespace's storage policy is in Kubernetes: "Tanzu Storage Policy" is
    tanzu-storage-policy."""
    return _as_dns_label(policy, "")


def _label_finding(path: str, name: str, example: str, findings: list[Finding]) -> None:
    problem = dns_label_problem(name) if name else ""
    if problem:
        label = _as_dns_label(name, "")
        findings.append(Finding.error(path, problem, f"write a DNS label, e.g. {example}.", (label,) if label else ()))


def cluster_storage_class(site: Site) -> str:
    """The storage class of the cluster's nodes: tanzu_cluster.storage_class, else the site's policy so named."""
    tkc = site.tanzu_cluster
    if tkc is not None and tkc.storage_class:
        return tkc.storage_class
    return storage_class_of(site.storage.policy) if site.storage is not None else ""


def api_at_least(version: str, wanted: str) -> bool:
    """Whether vCenter's API version (``about.apiVersion``, 7.0.3.0 or 7.0.2.00100) is ``wanted`` or later."""
    def key(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", text)) + (0,) * 4

    return key(version)[:4] >= key(wanted)[:4]


def version_findings(site: Site, api_version: str) -> list[Finding]:
    """What ``site``'s namespace block asks that a vCenter of API ``api_version`` does not take."""
    ns = site.namespace
    if ns is None or not api_version or api_at_least(api_version, OWNER_FROM):
        return []
    out = []
    for i, entry in enumerate(ns.access):
        if entry.role == "OWNER":
            out.append(Finding.error(f"{NS}.access[{i}].role", f"OWNER is a role from vCenter API {OWNER_FROM} (7.0 "
                                                               f"Update 2a); this vCenter's API is {api_version}.",
                                     "write EDIT, or upgrade vCenter first.", ("EDIT",)))
    if ns.vm_classes:
        out.append(Finding.error(f"{NS}.vm_classes", f"binding VM classes to a namespace (vm_service_spec) came with "
                                                     f"vCenter API {VM_SERVICE_FROM} (7.0 Update 2a); this vCenter's "
                                                     f"API is {api_version}, where every class serves every "
                                                     f"namespace.", "remove vm_classes, or upgrade vCenter first."))
    return out


def _network(text: str, path: str, findings: list[Finding]) -> Optional[IPNetwork]:
    try:
        network = IPNetwork(text)
    except (AddrFormatError, ValueError, TypeError):
        findings.append(Finding.error(path, f"{text!r} is not an IPv4 network.", "write it as an address with its "
                                                                                "prefix, e.g. 172.24.0.0/16."))
        return None
    if network.version != 4 or "/" not in text:
        findings.append(Finding.error(path, f"{text!r} is not an IPv4 network with its prefix.",
                                      "write it as an address with its prefix, e.g. 172.24.0.0/16."))
        return None
    if network.ip != network.network:
        findings.append(Finding.error(path, f"{text} has host bits set.",
                                      f"clear them: the network it lies in is {network.cidr}."))
    return network.cidr


def _taken(site: Site, layout: NetworkLayout) -> list[tuple[int, int, str, str]]:
    """(first, last, what, field) of everything a cluster's networks must stay clear of."""
    taken = []
    for net in layout.networks.values():
        if net.network is not None:
            taken.append((net.network.first, net.network.last, f"the {net.role} network {net.network}",
                          f"{net.path}.cidr"))
    for i, text in enumerate(layout.additional_workload_networks):
        try:
            block = IPNetwork(text)
            taken.append((block.first, block.last, f"the further workload network {block}",
                          f"haproxy.additional_workload_networks[{i}]"))
        except (AddrFormatError, ValueError):
            continue
    for r in layout.load_balancer_ranges:
        taken.append((r.first, r.last, f"the load-balancer range {r.text}", r.path))
    wm = layout.supervisor
    if wm is not None:
        if wm.services_cidr is not None:
            taken.append((wm.services_cidr.first, wm.services_cidr.last, f"the Supervisor's services "
                                                                          f"{wm.services_cidr}",
                          "workload_management.services_cidr"))
        if wm.management is not None:
            taken.append((int(wm.management.start), int(wm.management.last), f"the Supervisor's addresses "
                                                                              f"{wm.management.start}-"
                                                                              f"{wm.management.last}",
                          "workload_management.supervisor_start"))
        for i, server in enumerate(wm.dns_servers):
            _single(taken, server, f"the DNS server {server}", f"workload_management.dns_servers[{i}]")
        for i, server in enumerate(wm.ntp_servers):
            _single(taken, server, f"the NTP server {server}", f"workload_management.ntp_servers[{i}]")
    for i, server in enumerate(site.haproxy.nameservers if site.haproxy else []):
        _single(taken, server, f"the DNS server {server}", f"haproxy.nameservers[{i}]")
    if site.vcenter is not None:
        _single(taken, site.vcenter.server, f"vCenter {site.vcenter.server}", "vcenter.server")
    return taken


def _single(taken: list, text: str, what: str, path: str) -> None:
    """An address (a host name is not one: DNS is not asked at the desk)."""
    try:
        address = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return
    if address.version == 4:
        taken.append((int(address), int(address), what, path))


def _clear(network: Optional[IPNetwork], path: str, taken: list, findings: list[Finding]) -> None:
    if network is None:
        return
    hits = [(what, where) for first, last, what, where in taken if first <= network.last and network.first <= last]
    if hits:
        named = "; ".join(f"{what} ({where})" for what, where in hits[:3]) + (
            f" and {len(hits) - 3} more" if len(hits) > 3 else "")
        findings.append(Finding.error(path, f"{network} overlaps {named}: the cluster's nodes would route those "
                                            f"addresses into the cluster.",
                                      "write a private network clear of every site network and the Supervisor's "
                                      "addresses, e.g. 172.24.0.0/16 for the pods and 10.112.0.0/16 for the "
                                      "services where those are free."))


def tanzu_findings(site: Site, layout: NetworkLayout) -> list[Finding]:
    """The findings of the ``namespace`` and ``tanzu_cluster`` blocks (none when the site has neither)."""
    findings: list[Finding] = []
    ns, tkc = site.namespace, site.tanzu_cluster
    if ns is not None:
        _namespace(site, findings)
    if tkc is not None:
        _cluster(site, layout, findings)
    return findings


def _namespace(site: Site, findings: list[Finding]) -> None:
    ns = site.namespace
    if site.workload_management is None:
        findings.append(Finding.error(NS, "a namespace lives on a Supervisor, and the site has no workload_management "
                                          "block.", "add the workload_management block (the enable stage)."))
    _label_finding(f"{NS}.name", ns.name, "tkgs-demo", findings)
    seen: dict[tuple[str, str, str], int] = {}
    for i, entry in enumerate(ns.access):
        path = f"{NS}.access[{i}]"
        if entry.subject and not _SUBJECT.match(entry.subject):
            findings.append(Finding.error(f"{path}.subject", f"{entry.subject!r} holds a space, '@', '/' or '\\': the "
                                                             f"subject is the name alone, its domain goes in domain.",
                                          "write the user or group name alone, e.g. administrator."))
        if entry.domain and not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", entry.domain):
            findings.append(Finding.error(f"{path}.domain", f"{entry.domain!r} is not a domain name.",
                                          "write the identity source's domain, e.g. vsphere.local."))
        key = (entry.subject.lower(), entry.domain.lower(), entry.subject_type)
        if key in seen:
            findings.append(Finding.error(path, f"{entry.subject_type.lower()} {entry.subject}@{entry.domain} is given "
                                                f"a role twice (also access[{seen[key]}]): vCenter keeps one role per "
                                                f"subject.", "remove one of the two entries."))
        seen.setdefault(key, i)
    for i, name in enumerate(ns.vm_classes):
        problem = dns_label_problem(name)
        if problem:
            findings.append(Finding.error(f"{NS}.vm_classes[{i}]", f"the VM class {problem}",
                                          "write a class's name as vCenter lists it, e.g. best-effort-small."))
    if ns.storage_limit_mib < 0:
        findings.append(Finding.error(f"{NS}.storage_limit_mib", f"is {ns.storage_limit_mib}: a limit is 0 (none) or "
                                                                 f"more MiB.", "write 0 for no limit.", ("0",)))
    if site.storage is None:
        findings.append(Finding.error(NS, "the namespace holds the site's storage policy, and the site has no storage "
                                          "block.", "add the storage block (the prepare stage makes the policy)."))
    if not 1 <= ns.timeout <= MAX_TIMEOUT:
        findings.append(Finding.error(f"{NS}.timeout", f"is {ns.timeout}: seconds from 1 to {MAX_TIMEOUT}.",
                                      "write 300.", ("300",)))


def _cluster(site: Site, layout: NetworkLayout, findings: list[Finding]) -> None:
    tkc, ns = site.tanzu_cluster, site.namespace
    if ns is None:
        findings.append(Finding.error(TKC, "a Tanzu Kubernetes cluster lives in a namespace, and the site has no "
                                           "namespace block.", "add the namespace block."))
    _label_finding(f"{TKC}.name", tkc.name, "tkc-01", findings)
    if tkc.release and not re.match(r"^v\d+\.\d+\.\d+", tkc.release):
        findings.append(Finding.error(f"{TKC}.release", f"{tkc.release!r} is not a Tanzu Kubernetes release's name.",
                                      "write a name `kubectl get tanzukubernetesreleases` lists, e.g. "
                                      "v1.21.6---vmware.1-tkg.1.b3d708a."))
    if tkc.control_plane_count not in (1, 3):
        findings.append(Finding.error(f"{TKC}.control_plane_count", f"is {tkc.control_plane_count}: a cluster's "
                                                                    f"control plane has 1 or 3 nodes (an odd number).",
                                      "write 1, or 3 for a highly available control plane.", ("1",)))
    if not 1 <= tkc.worker_count <= 150:
        findings.append(Finding.error(f"{TKC}.worker_count", f"is {tkc.worker_count}: the proof needs at least one "
                                                             f"worker to serve the Service.", "write 2.", ("2",)))
    for key in ("control_plane_class", "worker_class"):
        name = getattr(tkc, key)
        if ns is not None and name and name not in ns.vm_classes and ns.vm_classes:
            findings.append(Finding.error(f"{TKC}.{key}", f"the VM class {name} is not bound to the namespace "
                                                          f"(namespace.vm_classes: {', '.join(ns.vm_classes)}): the "
                                                          f"cluster's nodes could not use it.",
                                          f"write one of {', '.join(ns.vm_classes)}, or add {name} to "
                                          f"namespace.vm_classes."))
    if site.storage is not None:
        wanted = storage_class_of(site.storage.policy)
        if tkc.storage_class and tkc.storage_class != wanted:
            findings.append(Finding.error(f"{TKC}.storage_class", f"the namespace holds the storage policy "
                                                                  f"'{site.storage.policy}' (storage.policy), which is "
                                                                  f"the storage class {wanted}; {tkc.storage_class} "
                                                                  f"is none of the namespace's.",
                                          f"write {wanted}, or remove the key.", (wanted,)))
    taken = _taken(site, layout)
    pods = _network(tkc.pods_cidr, f"{TKC}.pods_cidr", findings)
    services = _network(tkc.services_cidr, f"{TKC}.services_cidr", findings)
    _clear(pods, f"{TKC}.pods_cidr", taken, findings)
    _clear(services, f"{TKC}.services_cidr", taken, findings)
    if pods is not None and services is not None and pods.first <= services.last and services.first <= pods.last:
        findings.append(Finding.error(f"{TKC}.services_cidr", f"{services} overlaps the pods' {pods} "
                                                              f"(tanzu_cluster.pods_cidr).",
                                      "write two networks apart, e.g. 172.24.0.0/16 and 10.112.0.0/16."))
    if not 1 <= tkc.timeout <= MAX_TIMEOUT:
        findings.append(Finding.error(f"{TKC}.timeout", f"is {tkc.timeout}: seconds from 1 to {MAX_TIMEOUT}.",
                                      "write 1800.", ("1800",)))
