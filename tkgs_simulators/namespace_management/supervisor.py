"""What enabling Workload Management does, as the stand-in plays it for one cluster.

Before accepting, :func:`judge` makes the checks vCenter makes of a spec's values (a request that
fails them is refused, nothing stored). Then, as the real Supervisor does once enable has
returned, :class:`Supervisor` connects to every HAProxy server of the load balancer spec over
HTTPS, trusting only the ``certificate_authority_chain`` given and checking that the certificate
names the server's address, logs in with the user and password given and reads the Data Plane
API's ``/v2/info`` (optionally from inside a network namespace, where the appliance simulator's
addresses are); and it checks that each virtual IP range (``address`` + ``count``) lies inside
the ranges the appliance was deployed with (``loadbalance.service_ip_range``, read from vCenter:
HAProxy cannot bind an address its appliance's ``anyip-routes.cfg`` lacks; haproxy-appliance.md,
"Known field problems"). A failure leaves ``config_status`` ERROR with a message naming the load
balancer and the cause, shaped as vCenter's (``{severity, details{id, default_message, args}}``, the
sentence ending ``Details: <cause>``), the cause in the words of the Go client a Supervisor runs
(:mod:`.go_words`: ``Get "https://...": x509: certificate signed by unknown authority``, ``dial tcp
...: connect: connection refused``...); the ids are the stand-in's own (``tkgs.stand_in.wcp.*``), never
VMware's. Otherwise, after ``config_seconds`` (the control-plane VMs deploying):
told the lab (``netns``), it plays the control plane and its load-balancer controller
(:mod:`.control_plane`): CONFIGURING, with the controller's messages, until the appliance's
HAProxy serves the virtual IP, then RUNNING, reconciling every ``reconcile_seconds`` for as
long as the Supervisor lives; told no lab, it turns RUNNING at once (``kubernetes_status``
READY). The VM properties can say a range is served while the appliance's own
``anyip-routes.cfg`` lacks it: only the controller, binding through HAProxy, finds that. Faults
the tests inject (:class:`Fault`): a lasting ERROR, a transient one (ERROR for a while, then on),
or never leaving CONFIGURING.

What the stand-in cannot know it does not invent: with no VM in vCenter holding the load
balancer's address as its ``network.management_ip``, the ranges cannot be checked, and that is
an ERROR too. The Info it reports is built from the accepted spec with VMware's bindings;
capacity figures are zero (there are no nodes), and the control plane's addresses follow the
management range (its first address the floating management endpoint, the next three the API
servers) and the first virtual IP (the cluster endpoint) once RUNNING.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Callable, Optional

import netaddr
import requests
from com.vmware.vapi.std_client import LocalizableMessage
from com.vmware.vcenter.namespace_management_client import Clusters, LoadBalancers, Networks

from tkgs_lib.https import basic_auth
from tkgs_lib.errors import SimulatorUnavailable, innermost_cause
from ..appliance.netns import run_in_netns
from tkgs_lib.https import ContextAdapter

from . import go_words
from .control_plane import PlayedControlPlane
from .inventory import Appliance

log = logging.getLogger(__name__)

__all__ = ["Fault", "Supervisor", "judge", "probe_data_plane", "unserved_ranges", "INFO_PATH"]

INFO_PATH = "/v2/info"
SUPERVISOR_ADDRESSES = 5  # a floating address and the control plane VMs' (haproxy-appliance.md)
ConfigStatus, KubernetesStatus, Severity = Clusters.ConfigStatus, Clusters.KubernetesStatus, Clusters.Message.Severity


@dataclass(frozen=True)
class Said:
    """One message as vCenter reports it (``Clusters.Message.details``, a LocalizableMessage): an id, the
    sentence with its arguments in place, and the arguments. A real Supervisor's ids are vcenter.wcp.*
    and its sentences end in ``Details: <Go's words>``; the stand-in's ids are its own, never VMware's."""

    id: str
    default_message: str
    args: tuple[str, ...] = ()


# The stand-in's message ids, shaped as vCenter's (vcenter.wcp.cluster.k8s.health.endpoint.problem...).
DATAPLANE_UNUSABLE = "tkgs.stand_in.wcp.loadbalancer.dataplane.unusable"
APPLIANCE_UNKNOWN = "tkgs.stand_in.wcp.loadbalancer.appliance.unknown"
RANGE_UNSERVED = "tkgs.stand_in.wcp.loadbalancer.range.unserved"
INJECTED = "tkgs.stand_in.wcp.injected"
CONTROL_PLANE = "tkgs.stand_in.wcp.controlplane"
CONTROLLER = "tkgs.stand_in.wcp.loadbalancer.controller"


@dataclass(frozen=True)
class Fault:
    """How the next enable (of ``cluster``, or of any when None) goes wrong after its checks pass:
    ``error`` stays ERROR with ``message``; ``transient`` is ERROR for ``seconds`` and until a read
    has reported it, then RUNNING (so a poller on a slow host sees the ERROR it is tested for, as a
    person watching vCenter would); ``stuck`` stays CONFIGURING until released
    (:meth:`Supervisor.release`), as a real enable outlasts a wait, then goes on as a good one."""

    kind: str
    message: str = ""
    seconds: float = 0.0
    cluster: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in ("error", "transient", "stuck"):
            raise ValueError(f"a fault is error, transient or stuck, not {self.kind!r}")


# --- before accepting ------------------------------------------------------------------------

def judge(spec: Clusters.EnableSpec) -> list[str]:
    """What is wrong with a decoded spec's values, as sentences (empty: acceptable). The stand-in
    plays vSphere networking with the HAProxy load balancer only, and says so for anything else."""
    problems: list[str] = []
    if spec.network_provider != Clusters.NetworkProvider.VSPHERE_NETWORK:
        return [f"network_provider {spec.network_provider} is not played by this stand-in: it plays "
                f"VSPHERE_NETWORK with an HAProxy load balancer."]
    management = spec.master_management_network
    if management.mode == Clusters.NetworkSpec.Ipv4Mode.STATICRANGE and management.address_range:
        count = management.address_range.address_count
        if count < SUPERVISOR_ADDRESSES:
            problems.append(f"master_management_network.address_range.address_count is {count}: the Supervisor "
                            f"needs {SUPERVISOR_ADDRESSES} consecutive addresses.")
        problems += _address_problems("master_management_network.address_range.starting_address",
                                      management.address_range.starting_address)
    if spec.workload_networks_spec is None:
        problems.append("workload_networks_spec is required with network_provider VSPHERE_NETWORK.")
    balancer = spec.load_balancer_config_spec
    if balancer is None:
        return problems + ["load_balancer_config_spec is required with network_provider VSPHERE_NETWORK."]
    if balancer.provider != LoadBalancers.Provider.HA_PROXY or balancer.ha_proxy_config_create_spec is None:
        return problems + [f"load_balancer_config_spec: provider {balancer.provider} is not played by this stand-in; "
                           f"it plays HA_PROXY with ha_proxy_config_create_spec."]
    if not balancer.address_ranges:
        problems.append("load_balancer_config_spec.address_ranges needs at least one range of virtual IPs.")
    for i, ip_range in enumerate(balancer.address_ranges):
        where = f"load_balancer_config_spec.address_ranges[{i}]"
        problems += _address_problems(f"{where}.address", ip_range.address)
        if ip_range.count < 1:
            problems.append(f"{where}.count is {ip_range.count}: a range holds at least one address.")
    servers = balancer.ha_proxy_config_create_spec.servers
    if not servers:
        problems.append("load_balancer_config_spec.ha_proxy_config_create_spec.servers needs at least one server.")
    for i, server in enumerate(servers):
        if not 0 < server.port < 65536:
            problems.append(f"load_balancer_config_spec.ha_proxy_config_create_spec.servers[{i}].port is "
                            f"{server.port}, not a TCP port.")
    return problems


def _address_problems(where: str, address: str) -> list[str]:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return [f"{where} is {address!r}, not an IPv4 address (the HAProxy appliance supports no IPv6)."]
    return []


# --- what the Supervisor does ----------------------------------------------------------------

def _verify_code(exc: BaseException) -> Optional[int]:
    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_code
        seen = seen.__cause__ or seen.__context__
    return None


def _refused_certificate(exc: BaseException, host: str, port: int, timeout: float) -> str:
    """Go's words for the certificate the server presented and the chain given refused."""
    code = _verify_code(exc)
    # OpenSSL's X509_V_ERR_CERT_NOT_YET_VALID 9, _CERT_HAS_EXPIRED 10, _HOSTNAME_MISMATCH 62, _IP_ADDRESS_MISMATCH 64
    if code in (9, 10, 62, 64):
        certificate = go_words.peer_certificate(host, port, timeout)
        if certificate is not None:
            return go_words.other_name(host, certificate) if code in (62, 64) else go_words.not_valid_now(certificate)
    return go_words.untrusted()


def probe_data_plane(host: str, port: int, username: str, password: str, ca_chain: str,
                     timeout: float) -> Optional[str]:
    """Why the Data Plane API at ``host:port`` cannot be used as given, in Go's words as the Supervisor's
    client meets it (:mod:`.go_words`), or None when it answers ``/v2/info`` as documented."""
    if not ca_chain.strip():  # create_default_context would trust the system's store instead
        return "no certificate authority chain was given, so the server cannot be trusted"
    try:
        context = ssl.create_default_context(cadata=ca_chain)  # only this chain; names are checked
    except (ssl.SSLError, ValueError):
        return "x509: malformed certificate: the certificate authority chain given is not PEM certificates"
    http = requests.Session()
    http.trust_env = False
    http.mount("https://", ContextAdapter(context))
    where = f"[{host}]" if ":" in host else host
    url = f"https://{where}:{port}{INFO_PATH}"
    try:
        answer = http.get(url, headers=basic_auth(username, password), timeout=(timeout, timeout),
                          allow_redirects=False)
    except requests.exceptions.SSLError as exc:
        return go_words.request_failed(url, _refused_certificate(exc, host, port, timeout))
    except requests.exceptions.ConnectTimeout:
        return go_words.request_failed(url, go_words.dial_failed(host, port, None))
    except requests.exceptions.ReadTimeout:
        return go_words.request_failed(url, go_words.client_timeout())
    except requests.exceptions.ConnectionError as exc:
        cause = innermost_cause(exc)
        return go_words.request_failed(url, go_words.dial_failed(host, port, cause if isinstance(cause, OSError)
                                                                 else None))
    finally:
        http.close()
    if answer.status_code != 200:
        try:
            said = str(answer.json()["message"])
        except (ValueError, KeyError, TypeError):
            said = answer.text.strip()[:200]
        return (f"GET {url}: HTTP {answer.status_code} {answer.reason}" + (f": {said}" if said else "") +
                (f" (user {username})" if answer.status_code == 401 else ""))
    try:
        str(answer.json()["api"]["version"])
    except (ValueError, KeyError, TypeError):
        return f"GET {url}: the answer is not the Data Plane API's info (no api.version)"
    return None


def unserved_ranges(ranges: list, appliance: Appliance) -> list[str]:
    """The virtual IP ranges (``IPRange``: address + count) not inside what ``appliance`` serves,
    each as ``address + count (first-last)``."""
    served = netaddr.IPSet(str(network) for network in appliance.service_ranges)
    missing = []
    for ip_range in ranges:
        first = netaddr.IPAddress(ip_range.address)
        last = netaddr.IPAddress(min(int(first) + ip_range.count - 1, 2 ** 32 - 1))
        if not netaddr.IPSet(netaddr.IPRange(first, last)).issubset(served):
            missing.append(f"{ip_range.address} + {ip_range.count} ({first}-{last})")
    return missing


class Supervisor:
    """One cluster's Supervisor: its accepted spec and where its configuration has got to.

    ``find_appliance(address)`` reads vCenter for the appliance at a load balancer's address;
    ``netns``: the network namespace the load balancers are reached from (None: this one), also the
    lab whose workload bridge the played control plane joins; ``ca_files``: vCenter's certificate
    (its own CA) and key, which issue the control plane's certificates."""

    def __init__(self, cluster: str, cluster_name: str, spec: Clusters.EnableSpec, *,
                 find_appliance: Callable[[str], Optional[Appliance]], netns: Optional[str] = None,
                 timeout: float = 5.0, config_seconds: float = 3.0, fault: Optional[Fault] = None,
                 on_removed: Callable[["Supervisor"], None] = lambda supervisor: None,
                 ca_files: Optional[tuple] = None, reconcile_seconds: float = 1.0,
                 health_check_interval_ms: Optional[int] = None, kubernetes=None) -> None:
        self.cluster, self.cluster_name, self.spec = cluster, cluster_name, spec
        self._find_appliance, self._netns, self._timeout = find_appliance, netns, timeout
        self._config_seconds, self._fault, self._on_removed = config_seconds, fault, on_removed
        self._ca_files, self._reconcile_seconds = ca_files, reconcile_seconds
        self._health_check_interval_ms = health_check_interval_ms
        self.kubernetes = kubernetes  # its Kubernetes API and what it runs (tkgs_simulators.kubernetes), or None
        self._played: Optional[PlayedControlPlane] = None
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._error_reported = threading.Event()  # an ERROR was in an Info read since it was set
        self._released = threading.Event()  # a stuck enable goes on
        self.config_status, self.kubernetes_status = ConfigStatus.CONFIGURING, KubernetesStatus.WARNING
        self._messages: list[Said] = []
        self._thread: Optional[threading.Thread] = None

    def __repr__(self) -> str:  # the spec holds a password: never shown
        return f"<Supervisor {self.cluster} {self.config_status}>"

    # --- life --------------------------------------------------------------------------------

    def start(self) -> "Supervisor":
        self._thread = threading.Thread(target=self._configure, name=f"supervisor-{self.cluster}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._cancel.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._timeout * 2 + 5)
        if self._played is not None:  # its thread stops it too; not later than this, though
            self._played.stop()
        if self.kubernetes is not None:
            self.kubernetes.stop()

    @property
    def control_plane(self):
        """The played control plane (a SupervisorControlPlane), or None: for the tests."""
        played = self._played
        return played.control_plane if played is not None else None

    def release(self) -> None:
        """A ``stuck`` enable goes on configuring, as a good one does."""
        self._released.set()

    def disable(self) -> None:
        """REMOVING for ``config_seconds``, then gone (``on_removed``); the played control plane and
        its load balancer go first."""
        self.stop()
        self._cancel = threading.Event()
        self._set(ConfigStatus.REMOVING, KubernetesStatus.WARNING, [])
        self._thread = threading.Thread(target=self._remove, name=f"supervisor-{self.cluster}-removal", daemon=True)
        self._thread.start()

    def update_load_balancer(self, load_balancer: str, spec: LoadBalancers.UpdateSpec) -> Optional[tuple[str, ...]]:
        """vCenter's ``LoadBalancers.update``: a value given replaces the HAProxy load balancer's user, password or CA
        chain, and address ranges are added (an update "only allows for addition of new IP ranges", the bindings
        say); the controller uses them from its next pass. Refused (the error type, a message id and sentence):
        another load balancer, another provider, a Supervisor being removed, ranges taken away."""
        balancer = self.spec.load_balancer_config_spec
        if load_balancer != balancer.id:
            return ("NOT_FOUND", "tkgs.stand_in.load_balancer.not_found",
                    f"Cluster {self.cluster} has no load balancer {load_balancer} (it has {balancer.id}).")
        if self.config_status == ConfigStatus.REMOVING:
            return ("NOT_ALLOWED_IN_CURRENT_STATE", "tkgs.stand_in.load_balancer.removing",
                    f"The Supervisor of cluster {self.cluster} is being removed.")
        if spec.provider not in (None, balancer.provider) or spec.avi_config_update_spec is not None:
            return ("INVALID_ARGUMENT", "tkgs.stand_in.load_balancer.provider",
                    f"Load balancer {load_balancer} is provided by {balancer.provider}, not {spec.provider}.")
        if spec.address_ranges is not None:
            kept = {(r.address, r.count) for r in balancer.address_ranges}
            if not kept <= {(r.address, r.count) for r in spec.address_ranges}:
                return ("INVALID_ARGUMENT", "tkgs.stand_in.load_balancer.ranges",
                        "An update only adds address ranges: give every range the load balancer has, and the new.")
        update = spec.ha_proxy_config_update_spec
        haproxy = balancer.ha_proxy_config_create_spec  # the controller reads it at each pass
        with self._lock:
            if spec.address_ranges is not None:
                balancer.address_ranges = list(spec.address_ranges)
            if update is not None:
                for name in ("username", "password", "certificate_authority_chain"):
                    if getattr(update, name) is not None:
                        setattr(haproxy, name, getattr(update, name))
        log.info("supervisor of %s: load balancer %s updated", self.cluster, load_balancer)
        return None

    def _set(self, status, kubernetes, messages: list[Said]) -> None:
        with self._lock:
            if (self.config_status, self.kubernetes_status, self._messages) == (status, kubernetes, list(messages)):
                return  # a controller's pass that changed nothing
            self._error_reported.clear()
            self.config_status, self.kubernetes_status, self._messages = status, kubernetes, list(messages)
        log.info("supervisor of %s: %s", self.cluster, status)

    def _configure(self) -> None:
        problems = self._check_load_balancer()
        if self._cancel.is_set():
            return
        if problems:
            self._set(ConfigStatus.ERROR, KubernetesStatus.ERROR, problems)
            return
        if self._cancel.wait(self._config_seconds):
            return
        fault = self._fault
        if fault is not None and fault.kind == "stuck":
            while not self._released.wait(0.05):  # CONFIGURING until released
                if self._cancel.is_set():
                    return
            fault = None
        if fault is not None:
            self._set(ConfigStatus.ERROR, KubernetesStatus.ERROR, [Said(INJECTED, fault.message)])
            if fault.kind == "error" or self._cancel.wait(fault.seconds) or not self._reported_or_cancelled():
                return
        if self._netns is None or self._ca_files is None:  # no lab to play the control plane in
            self._set(ConfigStatus.RUNNING, KubernetesStatus.READY, [])
            return
        self._play()

    def _play(self) -> None:
        """The control plane started, then the controller's loop: RUNNING only while the appliance
        serves the virtual IP (a real Supervisor's API endpoint is its load balancer's), CONFIGURING
        with what the controller met otherwise; every ``reconcile_seconds`` until stopped."""
        try:
            played = PlayedControlPlane(self.spec, self._netns, ca_files=self._ca_files, timeout=self._timeout,
                                        check_interval_ms=self._health_check_interval_ms, api=self.kubernetes)
            self._played = played
            self._set(ConfigStatus.CONFIGURING, KubernetesStatus.WARNING, [
                Said(CONTROL_PLANE, "Deploying the Supervisor's control plane.")])
            played.start()
        except SimulatorUnavailable as exc:
            self._set(ConfigStatus.ERROR, KubernetesStatus.ERROR, [
                Said(CONTROL_PLANE, f"The Supervisor's control plane cannot be deployed. Details: {exc}", (str(exc),))])
            if self._played is not None:
                self._played.stop()
            return
        try:
            while not self._cancel.is_set():
                problems = played.reconcile()
                if self._cancel.is_set():
                    break
                if problems:
                    self._set(ConfigStatus.CONFIGURING, KubernetesStatus.WARNING,
                              [Said(CONTROLLER, p) for p in problems])
                else:
                    self._set(ConfigStatus.RUNNING, KubernetesStatus.READY, [])
                self._cancel.wait(self._reconcile_seconds)
        finally:
            played.stop()

    def _reported_or_cancelled(self) -> bool:
        """Wait until an Info read has reported the ERROR; False when cancelled first."""
        while not self._error_reported.wait(0.05):
            if self._cancel.is_set():
                return False
        return not self._cancel.is_set()

    def _remove(self) -> None:
        played = self._played
        if played is not None:  # the Supervisor's load balancer goes with it
            played.remove_load_balancer()
        if not self._cancel.wait(self._config_seconds):
            self._on_removed(self)

    def _check_load_balancer(self) -> list[Said]:
        balancer = self.spec.load_balancer_config_spec
        haproxy = balancer.ha_proxy_config_create_spec
        name = f"Load balancer '{balancer.id}'"
        problems = []
        for server in haproxy.servers:
            def probe(server=server) -> Optional[str]:
                return probe_data_plane(server.host, server.port, haproxy.username, haproxy.password,
                                        haproxy.certificate_authority_chain, self._timeout)
            cause = run_in_netns(self._netns, probe) if self._netns else probe()
            if cause:
                where = f"{server.host}:{server.port}"
                problems.append(Said(DATAPLANE_UNUSABLE, f"{name}: cannot use the HAProxy Data Plane API at {where}. "
                                                         f"Details: {cause}", (balancer.id, where, cause)))
        if problems:
            return problems
        for server in haproxy.servers:
            appliance = self._find_appliance(server.host)
            if appliance is None:
                problems.append(Said(APPLIANCE_UNKNOWN, f"{name}: no VM in vCenter is the HAProxy appliance at "
                                                        f"{server.host} (none has network.management_ip "
                                                        f"{server.host}), so the virtual IP ranges it serves are "
                                                        f"unknown.",
                                     (balancer.id, server.host)))
                continue
            for missing in unserved_ranges(balancer.address_ranges, appliance):
                problems.append(Said(RANGE_UNSERVED, f"{name}: the virtual IP range {missing} is not served by the "
                                                     f"HAProxy appliance at {server.host} (VM {appliance.vm}, deployed "
                                                     f"with loadbalance.service_ip_range "
                                                     f"'{appliance.service_ip_range}'), so HAProxy cannot bind those "
                                                     f"addresses.",
                                     (balancer.id, missing, server.host, appliance.service_ip_range)))
        return problems

    # --- what vCenter reports ----------------------------------------------------------------

    def messages(self) -> list[str]:
        with self._lock:
            return [said.default_message for said in self._messages]

    def summary(self) -> Clusters.Summary:
        with self._lock:
            status, kubernetes = self.config_status, self.kubernetes_status
        return Clusters.Summary(cluster=self.cluster, cluster_name=self.cluster_name, stats=_no_stats(),
                                config_status=status, kubernetes_status=kubernetes)

    def info(self) -> Clusters.Info:
        with self._lock:
            status, kubernetes, messages = self.config_status, self.kubernetes_status, list(self._messages)
            if status == ConfigStatus.ERROR:
                self._error_reported.set()
        spec = self.spec
        severity = Severity.ERROR if status == ConfigStatus.ERROR else Severity.WARNING
        reported = [Clusters.Message(severity=severity, details=LocalizableMessage(
            id=said.id, default_message=said.default_message, args=list(said.args))) for said in messages]
        running = status == ConfigStatus.RUNNING
        management_endpoint, api_servers = "", set()
        address_range = spec.master_management_network.address_range
        if address_range is not None:
            first = ipaddress.IPv4Address(address_range.starting_address)
            management_endpoint = str(first)
            if running:
                api_servers = {str(first + i) for i in range(1, min(4, address_range.address_count))}
        balancer = spec.load_balancer_config_spec
        haproxy = balancer.ha_proxy_config_create_spec
        primary = spec.workload_networks_spec.supervisor_primary_workload_network
        return Clusters.Info(
            size_hint=spec.size_hint, stat_summary=_no_stats(), config_status=status, messages=reported,
            kubernetes_status=kubernetes, kubernetes_status_messages=reported,
            api_server_management_endpoint=management_endpoint,
            api_server_cluster_endpoint=balancer.address_ranges[0].address if running else "",
            api_servers=api_servers, network_provider=spec.network_provider,
            workload_networks=Clusters.WorkloadNetworksInfo(
                supervisor_primary_workload_network=_network_info(primary),
                network_list=[_network_info(n) for n in spec.workload_networks_spec.network_list or []] or None),
            supervisor_primary_workload_network=primary.network, workload_ntp_servers=spec.workload_ntp_servers,
            # The real Info carries no password: HAProxyInfo has none.
            load_balancers=[LoadBalancers.Info(
                id=balancer.id, address_ranges=balancer.address_ranges, provider=balancer.provider,
                ha_proxy_info=LoadBalancers.HAProxyInfo(
                    servers=haproxy.servers, username=haproxy.username,
                    certificate_authority_chain=haproxy.certificate_authority_chain))],
            service_cidr=spec.service_cidr, master_management_network=spec.master_management_network,
            master_dns=spec.master_dns, worker_dns=spec.worker_dns, master_storage_policy=spec.master_storage_policy,
            ephemeral_storage_policy=spec.ephemeral_storage_policy, cns_file_config=spec.cns_file_config,
            login_banner=spec.login_banner, master_dns_names=spec.master_dns_names, image_storage=spec.image_storage,
            default_image_registry=spec.default_image_registry, default_image_repository=spec.default_image_repository,
            master_dns_search_domains=spec.master_dns_search_domains, master_ntp_servers=spec.master_ntp_servers,
            default_kubernetes_service_content_library=spec.default_kubernetes_service_content_library,
            cluster_proxy_config=spec.cluster_proxy_config, content_libraries=spec.content_libraries,
            count=spec.count)


def _no_stats() -> Clusters.Stats:
    return Clusters.Stats(cpu_used=0, cpu_capacity=0, memory_used=0, memory_capacity=0, storage_used=0,
                          storage_capacity=0)


def _network_info(network: Networks.CreateSpec) -> Networks.Info:
    dvpg = network.vsphere_network
    return Networks.Info(network=network.network, network_provider=network.network_provider,
                         vsphere_network=None if dvpg is None else Networks.VsphereDVPGNetworkInfo(
                             portgroup=dvpg.portgroup, ip_assignment_mode=dvpg.ip_assignment_mode,
                             address_ranges=dvpg.address_ranges, gateway=dvpg.gateway,
                             subnet_mask=dvpg.subnet_mask, mode=dvpg.mode))

