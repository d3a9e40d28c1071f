"""The cluster's Supervisor as the stages read it after enable: what vCenter reports of it, and the checks of
it through the load balancer (its virtual IP from where the runner is, the appliance's HAProxy frontend and
control-plane servers, its anyip ranges: :mod:`tkgs_lib.appliance.supervisor_checks`).

A stage that changes what the Supervisor's load balancer runs on (the rotate stage's Data Plane API
password, the upgrade stage's new appliance) asks :func:`wait_until_served` afterwards: vCenter reports the
Supervisor RUNNING and every check passes, on two reads at least :data:`SETTLE_SECONDS` apart (the
Supervisor's controller reprograms the appliance on a loop of its own: one good read may come before its
next pass has met the change).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import TkgsError
from ..polling import wait_until

__all__ = ["SupervisorNow", "read_supervisor", "supervisor_view", "supervisor_rows", "wait_until_served",
           "NotServed", "SETTLE_SECONDS"]

SETTLE_SECONDS = 5.0


@dataclass
class SupervisorNow:
    """The cluster's Supervisor as vCenter reports it (``info``: VMware's ``Clusters.Info``; None: none)."""

    cluster: str  # managed object id, domain-c8
    cluster_name: str
    info: object = None

    @property
    def status(self) -> str:
        return str(self.info.config_status) if self.info is not None else "not enabled"

    @property
    def load_balancer(self) -> str:
        """The id of its load balancer ("" without one)."""
        balancers = (self.info.load_balancers if self.info is not None else None) or ()
        return next((b.id for b in balancers if b.id), "")

    @property
    def ca_chain(self) -> str:
        """The CA chain vCenter holds for its HAProxy load balancer: what the Supervisor trusts."""
        for balancer in (self.info.load_balancers if self.info is not None else None) or ():
            if balancer.ha_proxy_info is not None and balancer.ha_proxy_info.certificate_authority_chain:
                return balancer.ha_proxy_info.certificate_authority_chain
        return ""

    def shown(self) -> str:
        if self.info is None:
            return f"cluster {self.cluster_name} ({self.cluster}) has no Supervisor"
        return (f"the Supervisor of {self.cluster_name} ({self.cluster}) is {self.status}"
                + (f", its load balancer {self.load_balancer}" if self.load_balancer else ""))


def read_supervisor(run) -> SupervisorNow:
    """The Supervisor on the site's Workload Management cluster (workload_management.cluster, else vcenter.cluster)."""
    from ..vsphere.namespace_management import NamespaceManagement

    settings = run.network.supervisor
    name = settings.cluster if settings is not None else run.site.vcenter.cluster
    field = (settings.sources.get("cluster", "workload_management.cluster") if settings is not None
             else "vcenter.cluster")
    cluster = run.inventory.cluster_named(name, field)
    return SupervisorNow(cluster._moId, name, NamespaceManagement(run.require_vcenter().rest).find(cluster._moId))


def supervisor_view(cluster: str, info):
    """What the checks of the Supervisor through the load balancer take of a ``Clusters.Info`` (VMware's
    bindings, as vCenter's transport reads it): an :class:`~tkgs_lib.appliance.supervisor_checks.SupervisorView`."""
    from ..appliance.supervisor_checks import SupervisorView, VirtualIpRange
    from ..vsphere.namespace_management import messages_of

    ranges, servers, username, balancer_id = [], [], "", ""
    for balancer in info.load_balancers or ():
        balancer_id = balancer_id or balancer.id
        ranges += [VirtualIpRange(r.address, r.count) for r in balancer.address_ranges or ()]
        if balancer.ha_proxy_info is not None:
            servers += [(s.host, s.port) for s in balancer.ha_proxy_info.servers or ()]
            username = username or balancer.ha_proxy_info.username
    workload: list = []
    networks = info.workload_networks
    primary = networks.supervisor_primary_workload_network if networks is not None else None
    if primary is not None and primary.vsphere_network is not None:
        workload = [VirtualIpRange(r.address, r.count) for r in primary.vsphere_network.address_ranges or ()]
    return SupervisorView(cluster, str(info.config_status), tuple(messages_of(info)),
                          info.api_server_cluster_endpoint or "", balancer_id, tuple(ranges), tuple(servers), username,
                          tuple(workload), info.api_server_management_endpoint or "",
                          tuple(sorted(info.api_servers or ())), info.tls_endpoint_certificate or "")


def supervisor_rows(run, now: SupervisorNow, *, runner, password: str, ca_pem: str) -> list:
    """The checks of the Supervisor through the load balancer, read now (the appliance over ``runner``, its Data
    Plane API with ``password``, trusted through ``ca_pem``)."""
    from ..appliance.supervisor_checks import gather_supervisor_facts, supervisor_checks

    ca_file = run.site.vcenter.ca_file
    facts = gather_supervisor_facts(supervisor_view(now.cluster, now.info), ca_file=ca_file, runner=runner,
                                    dataplane_password=password, dataplane_ca_pem=ca_pem,
                                    dataplane_username=run.site.haproxy.dataplane_username,
                                    ca_described=f"vcenter.ca_file ({ca_file})" if ca_file else "no CA bundle")
    return supervisor_checks(facts, run.network.load_balancer_lines)


class NotServed(TkgsError):
    """The Supervisor was not served through the load balancer within the time given: ``rows`` say why."""

    def __init__(self, message: str, rows: Optional[list] = None) -> None:  # rows optional: reworded copies it
        super().__init__(message)
        self.rows = rows or []


def wait_until_served(run, *, runner: Callable[[], object], password: str, ca_pem: str, timeout: float,
                      what: str, settle: float = SETTLE_SECONDS, progress: bool = True) -> list:
    """Read vCenter's Supervisor and its checks through the load balancer until every check passes on two reads
    ``settle`` seconds apart; their rows. NotServed (the failing rows, in one sentence) after ``timeout`` s.
    ``runner()``: the appliance's SSH runner (asked at each read: it may be reconnected meanwhile)."""
    first_pass: list[Optional[float]] = [None]

    def read():
        now = read_supervisor(run)
        if now.info is None:
            return now, []
        try:
            return now, supervisor_rows(run, now, runner=runner(), password=password, ca_pem=ca_pem)
        except TkgsError as exc:  # the appliance cannot be read this time: a row that says so
            from ..appliance.checks import Check

            return now, [Check("the appliance", "read over SSH", exc.message, "not checked")]

    def done(seen) -> bool:
        now, rows = seen
        passing = now.info is not None and bool(rows) and all(row.status == "ok" for row in rows)
        if not passing:
            first_pass[0] = None
            return False
        if first_pass[0] is None:
            first_pass[0] = time.monotonic()
        return time.monotonic() - first_pass[0] >= settle

    def timed_out(seen, elapsed: float) -> Exception:
        now, rows = seen
        failing = [row for row in rows if row.status != "ok"]
        said = "; ".join(f"{row.check}: {row.found}" for row in failing) or (
            f"{now.shown()}; every check passed, but not yet on reads {settle:g} s apart" if rows else now.shown())
        return NotServed(f"{what}: after {elapsed:.0f} s the Supervisor is not served through the appliance "
                         f"({said}).", rows)

    _, rows = wait_until(read, done, timeout=timeout, timed_out=timed_out, interval=1.0, max_interval=2.0,
                         progress=f"waiting for the Supervisor through the appliance", show_progress=progress)
    return rows
