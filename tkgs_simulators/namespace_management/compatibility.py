"""Whether a cluster can take a Supervisor, as the stand-in judges what the simulator holds.

vCenter refuses an enable with UNSUPPORTED for a cluster that is "not supported for vSphere
Namespaces, the cluster's hosts do not have the required ESX version, or for any other
incompatibilities", and with UNABLE_TO_ALLOCATE_RESOURCE for one that "is not licensed" (VMware's
bindings, ``Clusters.enable``); it lists each cluster's reasons under ``GET
.../cluster-compatibility`` (``ClusterCompatibility.Summary``), each switch's for a cluster under
``GET .../distributed-switch-compatibility`` (``DistributedSwitchCompatibility.Summary``, with the
port groups a Supervisor may use), and whether any host is licensed under ``GET .../capability``
(``HostsConfig.Info``). What a cluster needs for vSphere networking (VSPHERE_NETWORK), from vSphere
with Tanzu's system requirements: DRS on and fully automated, vSphere HA on, every host ESXi 7.0
Update 1 or later and on one vSphere Distributed Switch 7.0 or later, and licensed hosts.

Each reason's id (``tkgs.stand_in.compatibility.*``) and sentence are this stand-in's, worded as
vCenter words its own, not copied from one. The stand-in plays no NSX: for NSXT_CONTAINER_PLUGIN (the
filters' default) and NSX_VPC it finds every cluster and switch incompatible, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from com.vmware.vapi.std_client import LocalizableMessage
from com.vmware.vcenter.namespace_management_client import (ClusterCompatibility, Clusters,
                                                             DistributedSwitchCompatibility, HostsConfig)

from .inventory import Cluster, Switch

__all__ = ["Reason", "cluster_reasons", "cluster_summary", "switch_summaries", "capability", "enable_refusal",
           "VSPHERE_NETWORK", "MIN_ESXI", "MIN_SWITCH"]

VSPHERE_NETWORK = Clusters.NetworkProvider.VSPHERE_NETWORK
MIN_ESXI = (7, 0, 1)  # ESXi 7.0 Update 1: the first with vSphere networking for Workload Management
MIN_SWITCH = (7, 0, 0)  # a vSphere Distributed Switch 7.0
FULLY_AUTOMATED = "fullyAutomated"


@dataclass(frozen=True)
class Reason:
    """One reason a cluster cannot take a Supervisor; ``licence``: it is the licence's (UNABLE_TO_ALLOCATE_RESOURCE)."""

    id: str
    sentence: str
    args: tuple[str, ...]
    licence: bool = False

    def message(self) -> LocalizableMessage:
        return LocalizableMessage(id=self.id, default_message=self.sentence, args=list(self.args))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text or "")[:3])


def _hosts(hosts) -> str:
    return ", ".join(h.name for h in hosts)


def _on_a_switch(cluster: Cluster, switches: list[Switch]) -> tuple[Optional[Switch], list]:
    """The 7.0 switch of the cluster's datacenter that holds every one of its hosts (None: none does),
    and the hosts missing from the one that holds most."""
    candidates = [s for s in switches if s.datacenter == cluster.datacenter and _version(s.version) >= MIN_SWITCH]
    best, missing = None, list(cluster.hosts)
    for switch in candidates:
        left = [h for h in cluster.hosts if h.moid not in switch.members]
        if len(left) < len(missing) or best is None:
            best, missing = switch, left
    return (best if best is not None and not missing else None), missing


def cluster_reasons(cluster: Cluster, switches: list[Switch], provider=VSPHERE_NETWORK) -> list[Reason]:
    """Why ``cluster`` cannot take a Supervisor with ``provider``'s networking (none: it can)."""
    name = cluster.moid
    if provider != VSPHERE_NETWORK:
        return [Reason("tkgs.stand_in.compatibility.nsx", f"Cluster {name} has no NSX to use: this stand-in plays "
                                                          f"vSphere networking (VSPHERE_NETWORK) only.", (name,))]
    reasons = []
    if not cluster.drs_enabled or cluster.drs_behavior != FULLY_AUTOMATED:
        now = "off" if not cluster.drs_enabled else f"on, {cluster.drs_behavior or 'with no automation level set'}"
        reasons.append(Reason("tkgs.stand_in.compatibility.drs", f"Cluster {name} must have DRS enabled and set to "
                                                                 f"fully automated to enable vSphere Namespaces (DRS "
                                                                 f"is {now}).", (name,)))
    if not cluster.ha_enabled:
        reasons.append(Reason("tkgs.stand_in.compatibility.ha", f"Cluster {name} must have vSphere HA enabled to "
                                                                f"enable vSphere Namespaces.", (name,)))
    if not cluster.hosts:
        reasons.append(Reason("tkgs.stand_in.compatibility.no_hosts", f"Cluster {name} has no hosts.", (name,)))
    old = [h for h in cluster.hosts if _version(h.version) < MIN_ESXI]
    if old:
        shown = "; ".join(f"{h.name} ESXi {h.version or 'of no version'} build {h.build or 'unknown'}" for h in old)
        reasons.append(Reason("tkgs.stand_in.compatibility.esx_version",
                              f"Cluster {name} has hosts with an unsupported ESX version (ESXi 7.0 Update 1 or later "
                              f"is needed): {shown}.", (name, _hosts(old))))
    switch, missing = _on_a_switch(cluster, switches)
    if cluster.hosts and switch is None:
        reasons.append(Reason("tkgs.stand_in.compatibility.distributed_switch",
                              f"Cluster {name} has hosts that are not on one vSphere Distributed Switch 7.0 or later "
                              f"with the others: {_hosts(missing)}.", (name, _hosts(missing))))
    unlicensed = [h for h in cluster.hosts if not h.licensed]
    if unlicensed:
        reasons.append(Reason("tkgs.stand_in.compatibility.license",
                              f"Cluster {name} has hosts that are not licensed for vSphere Namespaces: "
                              f"{_hosts(unlicensed)}.", (name, _hosts(unlicensed)), licence=True))
    return reasons


def cluster_summary(cluster: Cluster, switches: list[Switch], provider=VSPHERE_NETWORK) -> ClusterCompatibility.Summary:
    reasons = cluster_reasons(cluster, switches, provider)
    return ClusterCompatibility.Summary(cluster=cluster.moid, compatible=not reasons,
                                        incompatibility_reasons=[r.message() for r in reasons])


def switch_summaries(cluster: Cluster, switches: list[Switch], provider=VSPHERE_NETWORK
                     ) -> list[DistributedSwitchCompatibility.Summary]:
    """Each switch of the cluster's datacenter that holds any of its hosts, judged for the cluster: compatible
    when it is 7.0 or later and holds every host (then its port groups are the networks a Supervisor may use)."""
    summaries = []
    for switch in switches:
        if switch.datacenter != cluster.datacenter or not {h.moid for h in cluster.hosts} & switch.members:
            continue
        reasons = []
        if provider != VSPHERE_NETWORK:
            reasons.append(Reason("tkgs.stand_in.compatibility.nsx", f"Distributed switch {switch.moid} has no NSX: "
                                                                     f"this stand-in plays vSphere networking only.",
                                  (switch.moid,)))
        elif _version(switch.version) < MIN_SWITCH:
            reasons.append(Reason("tkgs.stand_in.compatibility.switch_version",
                                  f"Distributed switch {switch.moid} is version {switch.version or 'unknown'}; vSphere "
                                  f"Namespaces need 7.0 or later.", (switch.moid, switch.version)))
        missing = [h for h in cluster.hosts if h.moid not in switch.members]
        if missing and provider == VSPHERE_NETWORK:
            reasons.append(Reason("tkgs.stand_in.compatibility.switch_hosts",
                                  f"Distributed switch {switch.moid} does not hold every host of cluster "
                                  f"{cluster.moid}: {_hosts(missing)} are not on it.",
                                  (switch.moid, cluster.moid, _hosts(missing))))
        summaries.append(DistributedSwitchCompatibility.Summary(
            distributed_switch=switch.moid, compatible=not reasons,
            incompatibility_reasons=[r.message() for r in reasons] or None, network_provider=provider,
            compatible_networks=[] if reasons else list(switch.portgroups)))
    return summaries


def capability(clusters: list[Cluster]) -> HostsConfig.Info:
    """vCenter 7.0 supports vSphere Namespaces; they are licensed when any host is."""
    return HostsConfig.Info(namespaces_supported=True,
                            namespaces_licensed=any(h.licensed for c in clusters for h in c.hosts))


def enable_refusal(cluster: Cluster, switches: list[Switch]) -> Optional[tuple[str, list[Reason]]]:
    """The error an enable of ``cluster`` is refused with, and its reasons; None when it may go on."""
    reasons = cluster_reasons(cluster, switches)
    unsupported = [r for r in reasons if not r.licence]
    if unsupported:
        return "UNSUPPORTED", unsupported
    if reasons:
        return "UNABLE_TO_ALLOCATE_RESOURCE", reasons
    return None
