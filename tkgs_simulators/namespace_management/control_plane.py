"""The Supervisor's control plane and its load-balancer controller, as the stand-in plays them for
one enabled cluster once the enable's checks have passed.

What a real Supervisor does with HAProxy networking (vSphere 7 with Tanzu): vCenter deploys the
three control-plane VMs, with addresses on the primary workload network (``config_status``
CONFIGURING); once their API servers run, the Supervisor's load-balancer controller asks the
HAProxy appliance's Data Plane API, with the user, password and CA chain of the enable spec, for
the Kubernetes API's virtual IP: a frontend on 6443 and 443, the control-plane VMs behind it; and
vCenter reports RUNNING, with that virtual IP as ``api_server_cluster_endpoint``, only once the
load balancer serves it. Until then the Supervisor stays CONFIGURING and its ``messages`` carry
what the controller met (HAProxy's own words when it cannot bind an address the appliance's
``anyip-routes.cfg`` lacks: the field's Supervisor "stuck in configuring"). The controller keeps
reconciling for the Supervisor's life, as controllers do, so the Supervisor runs as soon as the
appliance is fixed, and a load balancer changed behind its back is put back.

Played with real parts: :class:`~tkgs_simulators.supervisor.SupervisorControlPlane` (three
TLS servers in a namespace on the lab's workload bridge, their certificates issued by the vCenter
simulator's own CA, as VMCA issues a real Supervisor's, so a client that trusts vCenter's CA
verifies the Supervisor) and :func:`~tkgs_simulators.supervisor.reconcile_load_balancer`
against the appliance's Data Plane API, from inside the lab's network namespace.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from pathlib import Path
from typing import Optional

from com.vmware.vcenter.namespace_management_client import Clusters

from tkgs_lib.errors import SimulatorUnavailable
from ..appliance.netns import run_in_netns
from ..supervisor import (ControlPlaneServer, SupervisorControlPlane, reconcile_load_balancer,
                                            remove_load_balancer)

log = logging.getLogger(__name__)

__all__ = ["PlayedControlPlane", "CONTROL_PLANE_VMS"]

CONTROL_PLANE_VMS = 3


def _first_addresses(ranges, count: int) -> list[str]:
    """The first ``count`` addresses of ``ranges`` (``IPRange``: address + count), in order."""
    addresses: list[str] = []
    for ip_range in ranges or ():
        first = ipaddress.IPv4Address(ip_range.address)
        addresses += [str(first + i) for i in range(min(ip_range.count, count - len(addresses)))]
        if len(addresses) == count:
            break
    return addresses


class PlayedControlPlane:
    """The control plane of the Supervisor enabled with ``spec``, in the lab namespace ``lab``, and its
    controller: :meth:`start`, then :meth:`reconcile` again and again, :meth:`stop` (any thread, any
    number of times). ``ca_files``: the vCenter simulator's certificate (its own CA) and key."""

    def __init__(self, spec: Clusters.EnableSpec, lab: str, *, ca_files: tuple[Path, Path], timeout: float,
                 check_interval_ms: Optional[int] = None, api=None) -> None:
        """``api``: the Supervisor's Kubernetes API its servers serve (:mod:`tkgs_simulators.kubernetes`)."""
        balancer = spec.load_balancer_config_spec
        self._balancer_id = balancer.id
        self._haproxy = balancer.ha_proxy_config_create_spec  # holds the password: never shown
        self.vip = balancer.address_ranges[0].address  # the Kubernetes API's address: the first virtual IP
        primary = spec.workload_networks_spec.supervisor_primary_workload_network.vsphere_network
        if primary is None:
            raise SimulatorUnavailable("the primary workload network has no vSphere network (port group, ranges, "
                                       "gateway), so the stand-in has nowhere to put the control plane.")
        self.addresses = _first_addresses(primary.address_ranges, CONTROL_PLANE_VMS)
        if len(self.addresses) < CONTROL_PLANE_VMS:
            raise SimulatorUnavailable(f"the primary workload network's address ranges hold {len(self.addresses)} "
                                       f"addresses; the Supervisor's {CONTROL_PLANE_VMS} control-plane VMs need "
                                       f"{CONTROL_PLANE_VMS}.")
        network = ipaddress.IPv4Network(f"{primary.gateway}/{primary.subnet_mask}", strict=False)
        self.lab, self.workload_cidr, self.gateway = lab, str(network), primary.gateway
        self._ca_files, self._timeout, self._check_interval_ms = ca_files, timeout, check_interval_ms
        self._api = api
        self._lock = threading.Lock()
        self.control_plane: Optional[SupervisorControlPlane] = None

    def __repr__(self) -> str:  # the spec's password stays out
        return f"<PlayedControlPlane {', '.join(self.addresses)} behind {self.vip} in {self.lab}>"

    @property
    def servers(self) -> list[ControlPlaneServer]:
        return list(self.control_plane.servers) if self.control_plane else []

    def start(self) -> None:
        """The three control-plane servers, certificates issued by vCenter's CA (SimulatorUnavailable)."""
        cert_file, key_file = self._ca_files
        control_plane = SupervisorControlPlane(self.lab, self.workload_cidr, self.gateway, self.addresses,
                                               vip=self.vip, ca_pem=Path(cert_file).read_text(),
                                               ca_key_pem=Path(key_file).read_text(), api=self._api)
        with self._lock:
            self.control_plane = control_plane
            control_plane.start()

    def _each_load_balancer(self, work) -> list[str]:
        """``work(url)`` for each HAProxy server of the spec, from the lab; the sentence of each failure."""
        problems = []
        for server in self._haproxy.servers:
            url = f"https://{server.host}:{server.port}"
            try:
                run_in_netns(self.lab, lambda url=url: work(url))
            except Exception as exc:  # noqa: BLE001 (what the controller met, reported as vCenter reports it)
                said = str(exc) or type(exc).__name__
                log.info("load-balancer controller of %s: %s", self._balancer_id, said)
                problems.append(f"Load balancer '{self._balancer_id}': the Kubernetes API's virtual IP {self.vip} is "
                                f"not served by the HAProxy Data Plane API at {server.host}:{server.port} yet: "
                                f"{said if said.endswith(('.', '?', '!')) else said + '.'}")
        return problems

    def reconcile(self) -> list[str]:
        """One pass of the controller over every HAProxy server: empty when each serves the virtual IP."""
        servers = self.servers
        if not servers:
            return [f"Load balancer '{self._balancer_id}': the control plane is not running."]
        haproxy = self._haproxy
        # explain=False: vCenter reports the Data Plane API's answer, not a diagnosis of it
        return self._each_load_balancer(lambda url: reconcile_load_balancer(
            url, haproxy.username, haproxy.password, haproxy.certificate_authority_chain, self.vip, servers,
            check_interval_ms=self._check_interval_ms, timeout=self._timeout, explain=False))

    def remove_load_balancer(self) -> list[str]:
        """What the controller made, removed (the Supervisor is being disabled); best effort."""
        haproxy = self._haproxy
        return self._each_load_balancer(lambda url: remove_load_balancer(
            url, haproxy.username, haproxy.password, haproxy.certificate_authority_chain, timeout=self._timeout))

    def stop(self) -> None:
        with self._lock:
            if self.control_plane is not None:
                self.control_plane.stop()
