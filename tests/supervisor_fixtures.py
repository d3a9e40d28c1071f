"""A Supervisor played for tests: a simulated appliance, its VM in the vCenter simulator, and Workload
Management enabled on the simulator's cluster with it, the stand-in told the appliance's lab so it
plays the control plane and the load-balancer controller there.

The enable spec is the site's: its workload range (the control plane takes its first three
addresses), its load-balancer range as the virtual IPs, the appliance's Data Plane API, user,
password and CA. The product's reads run as the stages run them: vCenter from here, the appliance
and the virtual IP from the lab's frontend side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from appliance_fixtures import DATAPLANE_PASSWORD, HEALTH_CHECK_MS, ROOT_PASSWORD, start_appliance
from test_namespace_management import deploy_appliance_vm, spec_for, wait_until_removed
from tkgs_lib.appliance.checks import Check
from tkgs_lib.appliance.supervisor_checks import gather_supervisor_facts, supervisor_checks
from tkgs_lib.stages.supervisor import supervisor_view
from tkgs_lib.vsphere.namespace_management import AddressRange, NamespaceManagement

VIP = "10.64.1.0"  # the first address of the site's load-balancer range 10.64.1.0/24


@dataclass
class Supervised:
    """An appliance (``lab``) and a vCenter simulator whose stand-in plays the cluster's Supervisor."""

    lab: object
    vcsim: object
    client: NamespaceManagement
    cluster: str
    spec: object = field(repr=False)  # holds the Data Plane API's password
    seen: list = field(default_factory=list)  # config_status values seen while waiting, in order

    @property
    def sim(self):
        return self.lab.sim

    def enable(self) -> None:
        self.client.enable(self.cluster, self.spec)

    def info(self):
        return self.client.get(self.cluster)

    def facts(self, timeout: float = 10.0):
        """The product's reads: vCenter from here, the rest from the lab's frontend side."""
        from tkgs_lib.appliance.ssh import SshRunner

        supervisor = supervisor_view(self.cluster, self.client.get(self.cluster))

        def work():
            with SshRunner(self.sim.management_address, password=ROOT_PASSWORD,
                           known_hosts=str(self.lab.site_file.parent / "known_hosts")) as runner:
                return gather_supervisor_facts(supervisor, ca_file=self.vcsim.ca_file, runner=runner,
                                               dataplane_password=DATAPLANE_PASSWORD,
                                               dataplane_ca_pem=self.sim.ca_pem, ca_described="vCenter's CA",
                                               timeout=timeout)
        return self.sim.in_lab(work)

    def checks(self, timeout: float = 10.0) -> list[Check]:
        """The product's reads, then its judging with the site's load-balancer ranges."""
        from tkgs_lib.site.layout import network_layout

        return supervisor_checks(self.facts(timeout), network_layout(self.lab.site).load_balancer_lines)


def wait_for(condition, what: str, timeout: float = 20.0, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(poll)


def play_in(lab, vcsim) -> None:
    """The simulator's stand-in plays the Supervisor in ``lab``'s lab, quickly: its control plane on the workload
    network, its load-balancer controller programming the appliance's HAProxy."""
    settings = vcsim.supervisor
    settings.config_seconds, settings.load_balancer_timeout, settings.load_balancer_netns = 0.2, 3.0, lab.sim.lab
    settings.reconcile_seconds, settings.health_check_interval_ms = 0.4, HEALTH_CHECK_MS


def vcenter_in_lab(lab, vcsim_binary, workdir, cleanup, password: str):
    """A vCenter simulator started inside ``lab``'s lab (its process and its stand-in's threads live there), playing
    the Supervisor there (:func:`play_in`); stopped by ``cleanup`` (an ExitStack), its Supervisors first."""
    from tkgs_simulators.appliance.netns import entered
    from tkgs_simulators.vcsim import VCenterSimulator

    with entered(lab.sim.lab):
        vcsim = VCenterSimulator(binary=vcsim_binary, password=password, workdir=workdir).start()
    cleanup.callback(vcsim.stop)
    cleanup.callback(vcsim.stop_supervisors)  # before the appliance they program goes
    play_in(lab, vcsim)
    return vcsim


def appliance_vm_in_lab(lab, vcsim) -> str:
    """The appliance's VM in vCenter with its properties, made from the lab; the cluster's id."""
    props = lab.sim.properties
    return lab.sim.in_lab(lambda: deploy_appliance_vm(vcsim, props["network.management_ip"],
                                                      props["loadbalance.service_ip_range"]))


def supervise(vcsim, tmp_path, *, faults=None) -> Supervised:
    """An appliance booted (with ``faults``), its VM in vCenter with the site's properties, and
    Workload Management enabled on the simulator's cluster with it."""
    from tkgs_lib.vsphere.rest import RestClient
    from tkgs_lib.vsphere.tls import TlsPolicy

    lab = start_appliance(tmp_path, faults=faults)
    try:
        props = lab.sim.properties
        cluster = deploy_appliance_vm(vcsim, props["network.management_ip"], props["loadbalance.service_ip_range"])
        play_in(lab, vcsim)
        rest = RestClient(vcsim.host, vcsim.port, TlsPolicy(ca_file=str(vcsim.ca_file)))
        rest.login(vcsim.username, vcsim.password)
        spec = spec_for(lab.sim.ca_pem, int(props["loadbalance.dataplane_port"]), host=lab.sim.management_address,
                        password=DATAPLANE_PASSWORD, vips=(AddressRange(VIP, 256),))
        supervised = Supervised(lab, vcsim, NamespaceManagement(rest), cluster, spec)
        supervised.enable()
    except BaseException:
        lab.sim.stop()
        raise
    return supervised


def statuses_until(supervised: Supervised, condition, what: str, timeout: float = 20.0):
    """vCenter's Info, read until ``condition(info)``; each config_status seen is kept in ``seen``."""
    def seen():
        info = supervised.info()
        if not supervised.seen or supervised.seen[-1] != info.config_status:
            supervised.seen.append(info.config_status)
        return info if condition(info) else None
    return wait_for(seen, what, timeout)


def checks_when(supervised: Supervised, condition, what: str, timeout: float = 20.0) -> list[Check]:
    """The checks, read again until ``condition(checks)`` holds."""
    def read():
        checks = supervised.checks()
        return checks if condition(checks) else None
    return wait_for(read, what, timeout)


def disable(supervised: Supervised) -> None:
    """Disable the Supervisor and wait until vCenter no longer knows it."""
    supervised.client.disable(supervised.cluster)
    wait_until_removed(supervised.client, supervised.cluster, timeout=10)
    supervised.seen.clear()


def end(supervised: Supervised) -> None:
    """Disable the Supervisor (its control plane and load balancer go), then stop the appliance."""
    from tkgs_simulators.appliance.netns import namespaces

    try:
        control_plane = supervised.vcsim.control_plane(supervised.cluster)
        disable(supervised)
        if control_plane is not None:
            assert control_plane.namespace not in namespaces()
        supervised.client.rest.logout()
    finally:
        supervised.sim.stop()
