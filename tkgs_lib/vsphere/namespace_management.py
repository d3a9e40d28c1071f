"""Workload Management (the Supervisor) with the HAProxy load balancer, through vCenter's ``/api``.

The enable request is VMware's own type: :func:`build_enable_spec` turns plain values into a
``com.vmware.vcenter.namespace_management_client.Clusters.EnableSpec`` (VMware's bindings decide
the types, the required fields and the wire names, ``master_DNS``, ``master_NTP_servers``...), and
:func:`enable_body` serializes it with VMware's runtime as ``/api`` reads it (``TypeConverter``
in its Swagger REST mode, maps as JSON objects, then the ``cleanjson`` encoder). Answers are read
back into the bindings' ``Clusters.Info`` and ``Clusters.Summary`` by the same runtime, which, as
a client should, keeps fields and enumeration values newer than itself.

The calls (vSphere Automation API 7.0.1 and later; no ``/rest`` form exists):
``POST /api/vcenter/namespace-management/clusters/{cluster}?action=enable`` (answers 204, then
the Supervisor configures itself), ``GET .../clusters/{cluster}`` (``config_status``
CONFIGURING | RUNNING | ERROR | REMOVING, with ``messages``), ``GET .../clusters``,
``POST .../clusters/{cluster}?action=disable``. Deprecated from vSphere 9.0 in favour of
``supervisors/{cluster}?action=enable_on_compute_cluster``, and still served. From API 7.0.3.0 (vCenter 7.0
U3), ``PATCH .../clusters/{cluster}/load-balancers/{id}`` (``LoadBalancers.update``) changes a load balancer
in place: an HAProxy one's user, password and CA chain (``HAProxyConfigUpdateSpec``, a value left None kept);
7.0 U2's bindings have only its get and list, so an older vCenter has no call that tells the Supervisor a
new password (:data:`LOAD_BALANCER_UPDATE_API`).

A read of a cluster that has no Supervisor is answered UNSUPPORTED (HTTP 400), as the bindings
document ``Clusters.get``, or NOT_FOUND (404), as 7.0 builds are seen to answer: :meth:`NamespaceManagement.find`
takes both for "none" (:func:`says_no_supervisor`).

Whether a cluster can take a Supervisor, as vCenter judges it (each read VMware's bindings type):
``GET .../capability`` (``HostsConfig.Info``: whether any host is licensed, API 7.0.0.0), ``GET
.../cluster-compatibility?network_provider=VSPHERE_NETWORK`` (``ClusterCompatibility.Summary``
per cluster, with its incompatibility reasons; the filter's network_provider is API 7.0.1.0,
unset it means NSX) and ``GET .../distributed-switch-compatibility?cluster=...&network_provider=
VSPHERE_NETWORK`` (``DistributedSwitchCompatibility.Summary`` per switch of the cluster, with the
port groups a Supervisor may use, ``compatible_networks``, API 7.0.1.0).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from com.vmware.vcenter.namespace_management_client import (ClusterCompatibility, Clusters,
                                                             DistributedSwitchCompatibility, HostsConfig, IPRange,
                                                             Ipv4Cidr, LoadBalancers, Networks, SizingHint)
from vmware.vapi.bindings.converter import RestConverter, TypeConverter
from vmware.vapi.bindings.type import ListType
from vmware.vapi.data.serializers.cleanjson import DataValueConverter
from vmware.vapi.exception import CoreException

from ..credentials import Secret
from ..errors import (ConnectionFailed, RestError, SiteError, SupervisorFailed, SupervisorStillConfiguring,
                      VSphereError)
from .rest import RestClient

__all__ = ["AddressRange", "ManagementNetwork", "WorkloadNetwork", "HaproxyLoadBalancer", "build_enable_spec",
           "enable_body", "NamespaceManagement", "SupervisorWait", "Unanswered", "messages_of", "says_no_supervisor",
           "reported_messages", "CLUSTERS_PATH", "CAPABILITY_PATH", "CLUSTER_COMPATIBILITY_PATH",
           "SWITCH_COMPATIBILITY_PATH", "LOAD_BALANCER_UPDATE_API", "load_balancer_update_body"]

CLUSTERS_PATH = "/api/vcenter/namespace-management/clusters"
CAPABILITY_PATH = "/api/vcenter/namespace-management/capability"
CLUSTER_COMPATIBILITY_PATH = "/api/vcenter/namespace-management/cluster-compatibility"
SWITCH_COMPATIBILITY_PATH = "/api/vcenter/namespace-management/distributed-switch-compatibility"
VSPHERE_NETWORK = str(Clusters.NetworkProvider.VSPHERE_NETWORK)
# LoadBalancers.update and HAProxyConfigUpdateSpec: each "added in vSphere API 7.0.3.0" (VMware's bindings,
# com/vmware/vcenter/namespace_management_client.py).
LOAD_BALANCER_UPDATE_API = (7, 0, 3, 0)


@dataclass(frozen=True)
class AddressRange:
    """Consecutive IPv4 addresses: the first and how many (what the API takes, never a CIDR)."""

    address: str
    count: int


@dataclass(frozen=True)
class ManagementNetwork:
    """The Supervisor's control plane addresses on the management network (5 consecutive ones)."""

    network: str  # the port group's managed object id, e.g. dvportgroup-21
    starting_address: str
    address_count: int
    subnet_mask: str
    gateway: str


@dataclass(frozen=True)
class WorkloadNetwork:
    """The primary workload network: a vSphere Namespaces network on a port group."""

    name: str  # the Namespaces network's name, a DNS label such as primary-workload
    portgroup: str  # the port group's managed object id
    address_ranges: tuple[AddressRange, ...]
    gateway: str
    subnet_mask: str


@dataclass(frozen=True)
class HaproxyLoadBalancer:
    """The HAProxy appliance as Workload Management uses it: its Data Plane API and virtual IPs."""

    id: str  # the Supervisor's name for it, a DNS label such as haproxy-lb
    servers: tuple[tuple[str, int], ...]  # each Data Plane API's address and port
    username: str
    password: str = field(repr=False)
    certificate_authority_chain: str  # PEM: the appliance's CA (its guestinfo.dataplaneapi.cacert)
    virtual_ip_ranges: tuple[AddressRange, ...] = ()


def _cidr(text: str, what: str) -> Ipv4Cidr:
    try:
        network = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise SiteError(f"{what} is {text!r}, not an IPv4 network written as its network address ({exc}).") from None
    return Ipv4Cidr(address=str(network.network_address), prefix=network.prefixlen)


def _size(size: str) -> SizingHint:
    for known in SizingHint.get_values():
        if known == size.upper():
            return known
    raise SiteError(f"the Supervisor's size is {size!r}; write one of {', '.join(SizingHint.get_values())}.")


def _ranges(ranges: Sequence[AddressRange]) -> list[IPRange]:
    return [IPRange(address=r.address, count=r.count) for r in ranges]


def build_enable_spec(*, size: str, service_cidr: str, management: ManagementNetwork, workload: WorkloadNetwork,
                      load_balancer: HaproxyLoadBalancer, storage_policy: str,
                      ephemeral_storage_policy: Optional[str] = None, image_storage_policy: Optional[str] = None,
                      master_dns: Sequence[str] = (), worker_dns: Sequence[str] = (),
                      dns_search_domains: Sequence[str] = (), ntp_servers: Sequence[str] = (),
                      content_library: Optional[str] = None) -> Clusters.EnableSpec:
    """The EnableSpec for vSphere networking with the HAProxy load balancer (haproxy-appliance.md's
    fields). Policies and the content library are ids (a storage policy's UUID, a library's id);
    the ephemeral and image storage policies default to ``storage_policy``. The password rides in
    it masked: the bindings print a structure's every field."""
    network_provider = Clusters.NetworkProvider.VSPHERE_NETWORK
    primary = Networks.CreateSpec(
        network=workload.name, network_provider=network_provider,
        vsphere_network=Networks.VsphereDVPGNetworkCreateSpec(
            portgroup=workload.portgroup, address_ranges=_ranges(workload.address_ranges),
            gateway=workload.gateway, subnet_mask=workload.subnet_mask))
    haproxy = LoadBalancers.HAProxyConfigCreateSpec(
        servers=[LoadBalancers.Server(host=host, port=port) for host, port in load_balancer.servers],
        username=load_balancer.username, password=Secret(load_balancer.password),
        certificate_authority_chain=load_balancer.certificate_authority_chain)
    return Clusters.EnableSpec(
        size_hint=_size(size), service_cidr=_cidr(service_cidr, "the Kubernetes service CIDR"),
        network_provider=network_provider,
        workload_networks_spec=Clusters.WorkloadNetworksEnableSpec(supervisor_primary_workload_network=primary),
        load_balancer_config_spec=LoadBalancers.ConfigSpec(
            id=load_balancer.id, provider=LoadBalancers.Provider.HA_PROXY,
            address_ranges=_ranges(load_balancer.virtual_ip_ranges), ha_proxy_config_create_spec=haproxy),
        master_management_network=Clusters.NetworkSpec(
            mode=Clusters.NetworkSpec.Ipv4Mode.STATICRANGE, network=management.network,
            address_range=Clusters.Ipv4Range(starting_address=management.starting_address,
                                             address_count=management.address_count,
                                             subnet_mask=management.subnet_mask, gateway=management.gateway)),
        master_dns=list(master_dns) or None, worker_dns=list(worker_dns) or None,
        master_dns_search_domains=list(dns_search_domains) or None, master_ntp_servers=list(ntp_servers) or None,
        master_storage_policy=storage_policy, ephemeral_storage_policy=ephemeral_storage_policy or storage_policy,
        image_storage=Clusters.ImageStorageSpec(storage_policy=image_storage_policy or storage_policy),
        default_kubernetes_service_content_library=content_library)


def _runtime_sentence(exc: CoreException) -> str:
    return "; ".join(m.def_msg for m in exc.messages)


def enable_body(spec: Clusters.EnableSpec) -> str:
    """The spec as ``/api`` reads it, serialized by VMware's runtime (the password in it too)."""
    try:
        value = TypeConverter.convert_to_vapi(spec, Clusters.EnableSpec.get_binding_type(), RestConverter.SWAGGER_REST)
    except CoreException as exc:  # VMware's own checks of the spec: a missing field, a union's rules
        raise VSphereError(f"the Workload Management EnableSpec is incomplete: {_runtime_sentence(exc)}.") from None
    return DataValueConverter.convert_to_json(value)


def load_balancer_update_body(*, username: Optional[str] = None, password: Optional[str] = None,
                              certificate_authority_chain: Optional[str] = None) -> str:
    """A ``LoadBalancers.UpdateSpec`` for an HAProxy load balancer (provider HA_PROXY, its
    ``ha_proxy_config_update_spec``), as ``/api`` reads it, serialized by VMware's runtime; a value left None
    is kept by vCenter. The password rides in it masked (the bindings print a structure's every field)."""
    haproxy = LoadBalancers.HAProxyConfigUpdateSpec(
        username=username, password=None if password is None else Secret(password),
        certificate_authority_chain=certificate_authority_chain)
    spec = LoadBalancers.UpdateSpec(provider=LoadBalancers.Provider.HA_PROXY, ha_proxy_config_update_spec=haproxy)
    try:
        value = TypeConverter.convert_to_vapi(spec, LoadBalancers.UpdateSpec.get_binding_type(),
                                              RestConverter.SWAGGER_REST)
    except CoreException as exc:
        raise VSphereError(f"the load balancer's UpdateSpec is incomplete: {_runtime_sentence(exc)}.") from None
    return DataValueConverter.convert_to_json(value)


@dataclass(frozen=True)
class Unanswered:
    """A read of the Supervisor that vCenter did not answer (the connection lost, refused, timed out)."""

    error: VSphereError


class SupervisorWait:
    """The judge of a wait for a Supervisor: done when ``config_status`` is RUNNING and
    ``kubernetes_status`` READY; an ERROR tolerated for ``error_grace`` seconds (each one that
    passed kept in ``passed_errors``, for the record), and so is a vCenter that does not answer (a
    restart in the middle of a 40-minute wait is no reason to give up); REMOVING ends it (someone
    disabled it)."""

    def __init__(self, cluster: str, timeout: float, error_grace: Optional[float],
                 what_to_check: Callable[[list[Clusters.Message]], str], clock) -> None:
        self.cluster, self.timeout, self.error_grace = cluster, timeout, error_grace
        self.what_to_check, self.clock = what_to_check, clock
        self.info: Optional[Clusters.Info] = None
        self.passed_errors: list[str] = []  # "ERROR for 2 s: <messages>", each that passed
        self._error_since: Optional[float] = None
        self._error_messages: list[str] = []
        self._error_reported: list[Clusters.Message] = []  # the same, with their ids, for what_to_check
        self._unanswered_since: Optional[float] = None

    def done(self, info) -> bool:
        now = self.clock.now()
        if isinstance(info, Unanswered):
            if self._unanswered_since is None:
                self._unanswered_since = now
            lasted = now - self._unanswered_since
            grace = self.timeout if self.error_grace is None else self.error_grace
            if lasted >= grace:
                raise info.error.reworded(f"{info.error.message.rstrip('.')}; vCenter has not answered the wait's "
                                          f"reads for {_seconds(lasted)} s (workload_management.error_grace is "
                                          f"{grace:g})")
            return False
        self._unanswered_since = None
        self.info = info
        status = str(info.config_status)
        if status == "ERROR":
            if self._error_since is None:
                self._error_since = now
            self._error_messages, self._error_reported = messages_of(info), reported_messages(info)
            lasted = now - self._error_since
            if self.error_grace is not None and lasted >= self.error_grace:
                raise SupervisorFailed(self._sentence(
                    f"has been in ERROR for {_seconds(lasted)} s, longer than the {self.error_grace:g} s an error may "
                    f"last while vCenter retries (workload_management.error_grace)", self._error_messages,
                    self._error_reported))
            return False
        if self._error_since is not None:  # an ERROR that passed
            said = "; ".join(self._error_messages) or "no message"
            self.passed_errors.append(f"ERROR for {_seconds(now - self._error_since)} s, then {status}: {said}")
            self._error_since = None
        if status == "REMOVING":
            raise SupervisorFailed(self._sentence("is being removed (someone disabled it meanwhile)", messages_of(info),
                                                  reported_messages(info)))
        return status == "RUNNING" and str(info.kubernetes_status) == "READY"

    def timed_out(self, info, elapsed: float) -> Exception:
        if isinstance(info, Unanswered):
            return info.error.reworded(f"{info.error.message.rstrip('.')}; the wait's timeout "
                                       f"({self.timeout:g} s, workload_management.timeout) passed meanwhile")
        status = f"{info.config_status}" + (f", Kubernetes {info.kubernetes_status}" if info.kubernetes_status else "")
        # In ERROR at the deadline it failed as a lasting ERROR fails; otherwise vCenter is still at work.
        failed = SupervisorFailed if str(info.config_status) == "ERROR" else SupervisorStillConfiguring
        return failed(self._sentence(f"is still {status} after waiting {_waited(elapsed, self.timeout)}",
                                     messages_of(info), reported_messages(info)))

    def _sentence(self, state: str, messages: list[str], reported: list[Clusters.Message]) -> str:
        said = (f": vCenter says: {'; '.join(m.rstrip('.') for m in messages)}" if messages
                else "; vCenter gives no message")
        check = self.what_to_check(reported)
        return f"Workload Management on cluster {self.cluster} {state}{said}." + (f" {check}" if check else "")


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def says_no_supervisor(error: RestError) -> bool:
    """Whether ``error``, a read of a cluster, says it has no Supervisor: UNSUPPORTED (HTTP 400, "if the
    specified cluster does not have vSphere Namespaces enabled", the bindings' ``Clusters.get``) or
    NOT_FOUND (404: 7.0 builds answer so, and so does an unknown cluster)."""
    kind = error.error_type.rsplit(".", 1)[-1].upper()  # /api: UNSUPPORTED; /rest: ...std.errors.unsupported
    return error.status == 404 or (error.status == 400 and kind == "UNSUPPORTED")


def _waited(elapsed: float, timeout: float) -> str:
    """How long a wait lasted, and the timeout that ended it: "60 s (workload_management.timeout is 60)",
    "2 h 0 min (7,200 s; workload_management.timeout is 7200)"."""
    field = f"workload_management.timeout is {timeout:g}"
    if elapsed < 120:
        return f"{_seconds(elapsed)} s ({field})"
    minutes = int(elapsed // 60)
    lasted = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
    return f"{lasted} ({elapsed:,.0f} s; {field})"


def reported_messages(info: Clusters.Info) -> list[Clusters.Message]:
    """Every message of an Info, as vCenter reports it (its id with it): the Supervisor's, then Kubernetes'."""
    return [*(info.messages or []), *(info.kubernetes_status_messages or [])]


def messages_of(info: Clusters.Info) -> list[str]:
    """The sentences of an Info's messages (its severity first when it is not INFO)."""
    sentences = []
    for message in info.messages or []:
        text = message.details.default_message if message.details else (message.id or "")
        sentences.append(text if message.severity == "INFO" else f"{message.severity}: {text}")
    return sentences


class NamespaceManagement:
    """Workload Management on a vCenter, over ``rest`` (a logged-in :class:`RestClient`)."""

    def __init__(self, rest: RestClient) -> None:
        self.rest = rest

    def __repr__(self) -> str:
        return f"<NamespaceManagement {self.rest.base_url}>"

    def enable(self, cluster: str, spec: Clusters.EnableSpec) -> None:
        """Ask vCenter to enable the Supervisor on ``cluster`` (a managed object id, domain-c8);
        it answers at once, and configures it afterwards: follow with :meth:`get`."""
        self.rest.api_post(f"{CLUSTERS_PATH}/{cluster}", enable_body(spec), action="enable")

    def disable(self, cluster: str) -> None:
        self.rest.api_post(f"{CLUSTERS_PATH}/{cluster}", action="disable")

    def update_load_balancer(self, cluster: str, load_balancer: str, body: str) -> None:
        """``LoadBalancers.update`` (API 7.0.3.0 and later) of the Supervisor's load balancer ``load_balancer``
        on ``cluster``, ``body`` as :func:`load_balancer_update_body` makes it."""
        self.rest.api_patch(f"{CLUSTERS_PATH}/{cluster}/load-balancers/{load_balancer}", body)

    def get(self, cluster: str) -> Clusters.Info:
        path = f"{CLUSTERS_PATH}/{cluster}"
        return self._read("GET", path, self.rest.api_get(path), Clusters.Info.get_binding_type(), "a Clusters.Info")

    def find(self, cluster: str) -> Optional[Clusters.Info]:
        """:meth:`get`, or None when vCenter says the cluster has no Supervisor (:func:`says_no_supervisor`)."""
        try:
            return self.get(cluster)
        except RestError as exc:
            if says_no_supervisor(exc):
                return None
            raise

    def list(self) -> list[Clusters.Summary]:
        """A summary of each cluster that has a Supervisor."""
        return self._read("GET", CLUSTERS_PATH, self.rest.api_get(CLUSTERS_PATH),
                          ListType(Clusters.Summary.get_binding_type()), "a list of Clusters.Summary")

    def capability(self) -> HostsConfig.Info:
        """Whether this vCenter supports vSphere Namespaces and licenses them on any host."""
        return self._read("GET", CAPABILITY_PATH, self.rest.api_get(CAPABILITY_PATH),
                          HostsConfig.Info.get_binding_type(), "a HostsConfig.Info")

    def cluster_compatibility(self) -> list[ClusterCompatibility.Summary]:
        """Each cluster's compatibility with a Supervisor on vSphere networking, with vCenter's reasons."""
        params = {"network_provider": VSPHERE_NETWORK}
        return self._read("GET", CLUSTER_COMPATIBILITY_PATH, self.rest.api_get(CLUSTER_COMPATIBILITY_PATH, params),
                          ListType(ClusterCompatibility.Summary.get_binding_type()),
                          "a list of ClusterCompatibility.Summary")

    def switch_compatibility(self, cluster: str) -> list[DistributedSwitchCompatibility.Summary]:
        """Each distributed switch of ``cluster``, judged for a Supervisor on vSphere networking."""
        params = {"cluster": cluster, "network_provider": VSPHERE_NETWORK}
        return self._read("GET", SWITCH_COMPATIBILITY_PATH, self.rest.api_get(SWITCH_COMPATIBILITY_PATH, params),
                          ListType(DistributedSwitchCompatibility.Summary.get_binding_type()),
                          "a list of DistributedSwitchCompatibility.Summary")

    def wait_until_running(self, cluster: str, *, timeout: float, poll: float = 5.0,
                           error_grace: Optional[float] = None,
                           what_to_check: Callable[[list[Clusters.Message]], str] = lambda m: "",
                           on_poll: Optional[Callable[[Clusters.Info], None]] = None, progress: str = "",
                           show_progress: bool = True, passed_errors: Optional[list] = None,
                           clock=None) -> Clusters.Info:
        """:meth:`get` until the Supervisor is up (:class:`SupervisorWait` judges each answer).

        An ERROR may pass (the Supervisor retries while its VMs deploy): for ``error_grace``
        seconds (None: until the timeout), after which the wait fails with vCenter's messages and
        ``what_to_check(messages)`` (the ``Clusters.Message`` list, ids with them); the timeout ends it
        too, with the last status and messages.
        Each ERROR that passed is added to ``passed_errors`` (for the record)."""
        from ..polling import REAL, wait_until

        judge = SupervisorWait(cluster, timeout, error_grace, what_to_check, clock or REAL)

        def seen(info, elapsed: float) -> None:
            if on_poll is not None:
                on_poll(info)

        def read():
            try:
                return self.get(cluster)
            except ConnectionFailed as lost:  # judged like a state: it may pass
                return Unanswered(lost)

        # Often at first (a stand-in, or a retry of a cluster already configured, is quick), then every ``poll``.
        try:
            return wait_until(read, judge.done, timeout=timeout, timed_out=judge.timed_out,
                              interval=min(0.5, poll), max_interval=poll, on_poll=seen,
                              progress=progress, show_progress=show_progress, clock=clock or REAL)
        finally:
            if passed_errors is not None:
                passed_errors.extend(judge.passed_errors)

    def wait_until_gone(self, cluster: str, *, timeout: float, poll: float = 5.0, error_grace: Optional[float] = None,
                        on_poll: Optional[Callable[[object], None]] = None, progress: str = "",
                        show_progress: bool = True, clock=None) -> None:
        """:meth:`find` until vCenter says the cluster has no Supervisor (a disable done: REMOVING, then gone),
        with the patience of :meth:`wait_until_running`: an ERROR, or a vCenter that does not answer, may last
        ``error_grace`` seconds (None: until the timeout); the timeout ends it with the last status and messages."""
        from ..polling import REAL, wait_until

        absent = object()  # the cluster has no Supervisor
        since: dict[str, float] = {}
        now = (clock or REAL).now
        grace = timeout if error_grace is None else error_grace

        def read():
            try:
                found = self.find(cluster)
            except ConnectionFailed as lost:
                return Unanswered(lost)
            return absent if found is None else found

        def done(info) -> bool:
            if info is absent:
                return True
            state = "unanswered" if isinstance(info, Unanswered) else str(info.config_status)
            for other in [k for k in since if k != state]:
                del since[other]
            if state in ("unanswered", "ERROR"):
                lasted = now() - since.setdefault(state, now())
                if lasted >= grace:
                    said = (info.error.message.rstrip(".") if isinstance(info, Unanswered) else
                            "; ".join(messages_of(info)) or "vCenter gives no message")
                    how = "vCenter has not answered" if state == "unanswered" else "it has been in ERROR"
                    raise SupervisorFailed(f"Workload Management on cluster {cluster} was being disabled, and {how} "
                                           f"for {_seconds(lasted)} s (workload_management.error_grace is "
                                           f"{grace:g}): {said}.")
            return False

        def timed_out(info, elapsed: float) -> Exception:
            state = "unanswered" if isinstance(info, Unanswered) else str(info.config_status)
            said = "" if isinstance(info, Unanswered) else "; ".join(messages_of(info))
            return SupervisorFailed(f"Workload Management on cluster {cluster} is still {state} "
                                    f"{_seconds(elapsed)} s after it was disabled (workload_management.timeout is "
                                    f"{timeout:g})" + (f": vCenter says: {said}." if said else "."))

        wait_until(read, done, timeout=timeout, timed_out=timed_out, interval=min(0.5, poll), max_interval=poll,
                   on_poll=(lambda info, elapsed: on_poll(info)) if on_poll else None, progress=progress,
                   show_progress=show_progress, clock=clock or REAL)

    @staticmethod
    def _read(method: str, path: str, data, binding_type, what: str):
        try:
            value = DataValueConverter.convert_to_data_value(json.dumps(data))
            return TypeConverter.convert_to_python(value, binding_type, rest_converter_mode=RestConverter.SWAGGER_REST)
        except (CoreException, ValueError) as exc:
            detail = _runtime_sentence(exc) if isinstance(exc, CoreException) else str(exc)
            raise RestError(f"{method} {path}: vCenter answered with something that is not {what} ({detail}).",
                            200) from None
