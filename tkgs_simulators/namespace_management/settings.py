"""How the stand-in plays the Supervisor: one object the simulator and its stand-in share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

__all__ = ["StandInSettings"]


@dataclass
class StandInSettings:
    """Changes take effect from the next enable (or disable).

    ``config_seconds``: how long an enable stays CONFIGURING once its checks pass (the control-plane
    VMs deploying), and a disable REMOVING; ``load_balancer_timeout``: seconds per connection to a
    load balancer; ``load_balancer_netns``: the network namespace load balancers are reached from
    (the appliance simulator's lab), None for the simulator's own. Given a lab, the stand-in also
    plays the Supervisor's control plane on its workload bridge and the load-balancer controller
    that programs the appliance, which reconciles every ``reconcile_seconds`` and has HAProxy check
    each control-plane server every ``health_check_interval_ms`` (None: HAProxy's 2 s). Its Kubernetes API
    serves TanzuKubernetesCluster in ``run.tanzu.vmware.com/<tkc_api_version>`` (v1alpha2: 7.0 Update 3;
    v1alpha1: 7.0 Update 1 and 2); ``load_balancer_stalled``: its load-balancer controller gives no
    VirtualMachineService an address (a test's fault).

    ``no_supervisor_error``: how a read of a cluster without a Supervisor is answered: NOT_FOUND
    (HTTP 404), as 7.0 builds are seen to answer, or UNSUPPORTED (HTTP 400), as VMware's bindings
    document ``Clusters.get`` ("if the specified cluster does not have vSphere Namespaces enabled")."""

    config_seconds: float = 3.0
    load_balancer_timeout: float = 5.0
    load_balancer_netns: Optional[str] = None
    reconcile_seconds: float = 1.0
    health_check_interval_ms: Optional[int] = None
    no_supervisor_error: Literal["NOT_FOUND", "UNSUPPORTED"] = "NOT_FOUND"
    namespace_seconds: float = 0.5  # how long a new vSphere Namespace stays CONFIGURING, and a removed one REMOVING
    tkc_api_version: str = "v1alpha2"
    load_balancer_stalled: bool = False
