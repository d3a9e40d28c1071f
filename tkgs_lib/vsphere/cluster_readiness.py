"""Whether a cluster can take a Supervisor, as vCenter judges it, read before an enable is sent.

vCenter refuses an enable with UNSUPPORTED ("the specified cluster is not supported for vSphere
Namespaces, the cluster's hosts do not have the required ESX version, or for any other
incompatibilities") or UNABLE_TO_ALLOCATE_RESOURCE ("the specified cluster is not licensed"):
VMware's bindings, ``Clusters.enable``. VMware's Ansible module and papivot's wcpctl ask first; so
does :func:`read_readiness`: the licence (``.../capability``), the cluster's compatibility with
vSphere networking and vCenter's reasons (``.../cluster-compatibility``), the site's switch as
vCenter judges it for the cluster and the port groups it offers a Supervisor
(``.../distributed-switch-compatibility``), each through :mod:`.namespace_management`; and over
SOAP, which vCenter answers (``ServiceContent.about``) and each host's product
(``HostSystem.summary.config.product``). vSphere networking came with API 7.0.1.0 (the bindings'
``Clusters.NetworkProvider.VSPHERE_NETWORK``); an older vCenter is not asked.

:func:`readiness_findings` makes an error finding of each reason, vCenter's words quoted, with the
fix; :func:`readiness_rows` says what was read, and from which vCenter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import RestError
from ..findings import Finding
from .connection import VCenterVersion
from .namespace_management import (CAPABILITY_PATH, CLUSTER_COMPATIBILITY_PATH, SWITCH_COMPATIBILITY_PATH,
                                   NamespaceManagement)

__all__ = ["ClusterReadiness", "HostProduct", "read_readiness", "readiness_findings", "readiness_rows", "fix_for",
           "VSPHERE_NETWORKING_API"]

VSPHERE_NETWORKING_API = (7, 0, 1)  # Clusters.NetworkProvider.VSPHERE_NETWORK: "added in vSphere API 7.0.1.0"
DRS = re.compile(r"\bDRS\b")
HA = re.compile(r"\bHA\b|high availability", re.IGNORECASE)


@dataclass(frozen=True)
class HostProduct:
    """A host of the cluster and the ESXi it runs, as vCenter reports it."""

    name: str
    version: str
    build: str

    def __str__(self) -> str:
        return f"{self.name} ESXi {self.version or 'of no version'} build {self.build or 'unknown'}"


@dataclass
class ClusterReadiness:
    """What vCenter said of the cluster's fitness for a Supervisor; a read it did not answer is in ``unread``."""

    vcenter: VCenterVersion
    cluster: str  # the cluster's managed object id
    switch: str  # the site's switch's managed object id
    licensed: Optional[bool] = None  # HostsConfig.Info.namespaces_licensed; None: not read
    compatibility: Any = None  # the cluster's ClusterCompatibility.Summary; None: not read, or not listed
    compatibility_read: bool = False
    switch_summary: Any = None  # the switch's DistributedSwitchCompatibility.Summary; None: not read, or not listed
    switches_read: bool = False
    hosts: tuple[HostProduct, ...] = ()
    unread: list[tuple[str, str]] = field(default_factory=list)  # (the call, vCenter's error)

    @property
    def speaks_vsphere_networking(self) -> bool:
        return self.vcenter.api_number[:3] >= VSPHERE_NETWORKING_API


def read_readiness(session, cluster, switch) -> ClusterReadiness:
    """Ask vCenter (``session``: a :class:`~.connection.VCenterSession`) whether ``cluster`` (its
    ``vim.ClusterComputeResource``) can take a Supervisor with vSphere networking on ``switch``."""
    client = NamespaceManagement(session.rest)
    readiness = ClusterReadiness(session.version, cluster._moId, switch._moId)
    readiness.hosts = tuple(HostProduct(h.name, h.summary.config.product.version or "",
                                        h.summary.config.product.build or "") for h in cluster.host or ())
    if not readiness.speaks_vsphere_networking:
        return readiness  # it would judge for NSX: the filter's network_provider is newer than it

    def asked(path: str, read):
        try:
            return read()
        except RestError as exc:
            readiness.unread.append((path, exc.message))
            return None

    capability = asked(CAPABILITY_PATH, client.capability)
    readiness.licensed = None if capability is None else bool(capability.namespaces_licensed)
    summaries = asked(CLUSTER_COMPATIBILITY_PATH, client.cluster_compatibility)
    if summaries is not None:
        readiness.compatibility_read = True
        readiness.compatibility = next((s for s in summaries if s.cluster == readiness.cluster), None)
    switches = asked(SWITCH_COMPATIBILITY_PATH, lambda: client.switch_compatibility(readiness.cluster))
    if switches is not None:
        readiness.switches_read = True
        readiness.switch_summary = next((s for s in switches if s.distributed_switch == readiness.switch), None)
    return readiness


def _said(messages) -> list[str]:
    return [m.default_message or m.id for m in messages or ()]


def _licence_fix(cluster: str) -> str:
    return (f"assign the hosts of cluster {cluster} a licence that includes Workload Management (vSphere with "
            f"Tanzu) in Administration > Licensing > Licenses > Assets")


def _switch_fix(cluster: str, switch: str) -> str:
    return (f"add every host of cluster {cluster} to distributed switch {switch} (vcenter.distributed_switch), "
            f"version 7.0 or later: Networking > {switch} > Add and Manage Hosts")


def fix_for(reason: str, cluster: str, switch: str) -> str:
    """What to do about one of vCenter's reasons (its words; the commonest causes, then a general fix)."""
    text = reason.lower()
    fixes = []
    if DRS.search(reason):
        fixes.append(f"in the vSphere Client, cluster {cluster} > Configure > Services > vSphere DRS > Edit: turn "
                     f"DRS on, with automation level Fully Automated")
    if HA.search(reason):
        fixes.append(f"in the vSphere Client, cluster {cluster} > Configure > Services > vSphere Availability > "
                     f"Edit: turn vSphere HA on")
    if "licens" in text:
        fixes.append(_licence_fix(cluster))
    if "switch" in text or "vds" in text:
        fixes.append(_switch_fix(cluster, switch))
    elif "version" in text or "esx" in text:
        fixes.append(f"upgrade every host of cluster {cluster} to ESXi 7.0 Update 1 or later (vSphere Lifecycle "
                     f"Manager), or move the older ones out of the cluster")
    if not fixes:
        fixes.append(f"fix it in the vSphere Client (Workload Management > Get Started lists cluster {cluster} "
                     f"among the incompatible ones, with the same reasons)")
    return "; ".join(fixes) + ", then rerun."


def readiness_findings(readiness: ClusterReadiness, *, cluster_name: str, cluster_field: str, switch_name: str,
                       portgroups: dict[str, tuple[str, str]]) -> list[Finding]:
    """An error for each thing vCenter says stops a Supervisor on the cluster; a warning for what it
    did not answer. ``portgroups``: the site's field → (port group name, id) of those the Supervisor uses."""
    where = f"cluster {cluster_name} ({readiness.cluster})"
    vc = readiness.vcenter
    if not readiness.speaks_vsphere_networking:
        return [Finding.error("vcenter.server", f"{vc} predates vSphere networking for Workload Management "
                                                f"(VSPHERE_NETWORK, vSphere API 7.0.1.0): a Supervisor with the "
                                                f"HAProxy load balancer needs vCenter 7.0 Update 1 or later.",
                              "upgrade vCenter to 7.0 Update 1 or later, then rerun.")]
    findings = [Finding.warning(cluster_field, f"{vc} did not answer GET {path}: {error}",
                                f"vCenter judges {where} again when the request is sent; rerun once it answers to "
                                f"see its reasons first.") for path, error in readiness.unread]
    if readiness.licensed is False:
        findings.append(Finding.error(cluster_field, f"{vc} says no host it manages is licensed for Workload "
                                                     f"Management (GET {CAPABILITY_PATH}: namespaces_licensed is "
                                                     f"false), so it refuses the enable (UNABLE_TO_ALLOCATE_RESOURCE).",
                                      f"{_licence_fix(cluster_name)}, then rerun."))
    summary = readiness.compatibility
    if readiness.compatibility_read and summary is None:
        findings.append(Finding.error(cluster_field, f"{vc} lists no compatibility for {where} (GET "
                                                     f"{CLUSTER_COMPATIBILITY_PATH}?network_provider=VSPHERE_NETWORK):"
                                                     f" the user cannot read the cluster, or it is no cluster.",
                                      "log in as a vCenter administrator (vcenter.username), or name another "
                                      "cluster."))
    elif summary is not None and not summary.compatible:
        reasons = _said(summary.incompatibility_reasons) or ["(it gives no reason)"]
        findings += [Finding.error(cluster_field, f"{vc} says {where} cannot take a Supervisor with vSphere "
                                                  f"networking: \"{reason}\"",
                                   fix_for(reason, cluster_name, switch_name)) for reason in reasons]
    switch = readiness.switch_summary
    switch_where = f"distributed switch {switch_name} ({readiness.switch})"
    if readiness.switches_read and switch is None:
        findings.append(Finding.error("vcenter.distributed_switch", f"{vc} does not offer {switch_where} to "
                                                                    f"{where}'s Supervisor (GET "
                                                                    f"{SWITCH_COMPATIBILITY_PATH} lists it not): no "
                                                                    f"host of the cluster is on it.",
                                      f"{_switch_fix(cluster_name, switch_name)}, then rerun."))
    elif switch is not None and not switch.compatible:
        reasons = _said(switch.incompatibility_reasons) or ["(it gives no reason)"]
        findings += [Finding.error("vcenter.distributed_switch", f"{vc} says {switch_where} cannot carry {where}'s "
                                                                 f"Supervisor: \"{reason}\"",
                                   fix_for(reason, cluster_name, switch_name)) for reason in reasons]
    elif switch is not None and switch.compatible_networks is not None:
        offered = set(switch.compatible_networks)
        for path, (name, moid) in portgroups.items():
            if moid not in offered:
                findings.append(Finding.error(path, f"{vc} does not offer port group '{name}' ({moid}) of "
                                                    f"{switch_where} to {where}'s Supervisor (it offers "
                                                    f"{', '.join(sorted(offered)) or 'none'}).",
                                              f"name a port group of {switch_name} that every host of the "
                                              f"cluster reaches, or rerun the prepare stage with apply."))
    return findings


def readiness_rows(readiness: ClusterReadiness, *, cluster_name: str, switch_name: str) -> list[dict]:
    """What vCenter said, a row each: ``what``, ``found`` and ``read from`` (the call and the vCenter)."""
    vc = readiness.vcenter
    rows = [{"what": "vCenter", "found": str(vc), "read from": "ServiceContent.about (SOAP)"},
            {"what": f"hosts of cluster {cluster_name}",
             "found": "; ".join(str(h) for h in readiness.hosts) or "none",
             "read from": f"HostSystem.summary.config.product (SOAP), {vc}"}]
    if not readiness.speaks_vsphere_networking:
        rows.append({"what": "compatibility", "found": "not asked: it predates vSphere networking (API 7.0.1.0)",
                     "read from": str(vc)})
        return rows
    unread = dict(readiness.unread)
    licensed = {True: "licensed on some host", False: "licensed on no host", None: "not read"}[readiness.licensed]
    rows.append({"what": "Workload Management licence",
                 "found": licensed + (f": {unread[CAPABILITY_PATH]}" if CAPABILITY_PATH in unread else ""),
                 "read from": f"GET {CAPABILITY_PATH}, {vc}"})
    summary = readiness.compatibility
    found = ("not read: " + unread.get(CLUSTER_COMPATIBILITY_PATH, "") if not readiness.compatibility_read else
             "not listed" if summary is None else "compatible" if summary.compatible else
             "not compatible: " + "; ".join(_said(summary.incompatibility_reasons)))
    rows.append({"what": f"cluster {cluster_name} ({readiness.cluster}) for vSphere networking", "found": found,
                 "read from": f"GET {CLUSTER_COMPATIBILITY_PATH}?network_provider=VSPHERE_NETWORK, {vc}"})
    switch = readiness.switch_summary
    found = ("not read: " + unread.get(SWITCH_COMPATIBILITY_PATH, "") if not readiness.switches_read else
             "not offered to the cluster" if switch is None else
             "not compatible: " + "; ".join(_said(switch.incompatibility_reasons)) if not switch.compatible else
             f"compatible; port groups offered: {', '.join(switch.compatible_networks or ()) or 'none'}")
    rows.append({"what": f"distributed switch {switch_name} ({readiness.switch})", "found": found,
                 "read from": f"GET {SWITCH_COMPATIBILITY_PATH}?cluster={readiness.cluster}&network_provider="
                              f"VSPHERE_NETWORK, {vc}"})
    return rows
