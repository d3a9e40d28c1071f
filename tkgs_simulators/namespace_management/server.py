"""The stand-in's HTTPS server: ``/api/vcenter/namespace-management/clusters...`` as vCenter answers it.

The vCenter simulator's own TLS listener proxies every path under
``/api/vcenter/namespace-management/`` here (the launcher's ``-namespace-management-upstream``);
this server listens on 127.0.0.1 with the simulator's certificate. Each answer carries
``X-Simulated-By`` naming it a tkgs-runbook stand-in. Served:

* ``GET .../clusters``: a ``Clusters.Summary`` per cluster with a Supervisor;
* ``GET .../clusters/{cluster}``: its ``Clusters.Info`` (without one, NOT_FOUND or UNSUPPORTED, as
  :attr:`.settings.StandInSettings.no_supervisor_error` says);
* ``GET .../capability``, ``GET .../cluster-compatibility`` (filters ``compatible``,
  ``network_provider``) and ``GET .../distributed-switch-compatibility?cluster=...``: judged from
  what the simulator holds, its clusters' DRS and HA, hosts, switches and licences (:mod:`.compatibility`);
* ``POST .../clusters/{cluster}?action=enable``: the body decoded by VMware's types (:mod:`.spec`)
  and judged (:func:`.supervisor.judge`); refused with 400 and every problem, nothing stored; the
  cluster must be one of the simulator's (``domain-c...``) and able to take a Supervisor (else
  UNSUPPORTED, or UNABLE_TO_ALLOCATE_RESOURCE when unlicensed, with each reason); accepted with
  204, then configured as :class:`.supervisor.Supervisor` plays it (given the lab: its control
  plane and load-balancer controller too, :mod:`.control_plane`);
* ``POST .../clusters/{cluster}?action=disable``: REMOVING, then gone;
* ``/api/vcenter/namespaces/instances...`` and ``.../namespace-management/virtual-machine-classes...``:
  vSphere Namespaces and VM classes (:mod:`.namespaces`; the launcher proxies ``/api/vcenter/namespaces/``
  here too).
* ``PATCH .../clusters/{cluster}/load-balancers/{id}`` (``LoadBalancers.update``, vSphere API 7.0.3.0):
  served only while the simulator reports API 7.0.3.0 or later (else OPERATION_NOT_FOUND, as for any
  path a vCenter does not know); the body decoded by VMware's types as a ``LoadBalancers.UpdateSpec``;
  a new user, password or CA chain of an HAProxy load balancer, and further address ranges (only
  added: the bindings' words), which the Supervisor's controller uses from its next pass.

A request needs a session of the simulator's (``vmware-api-session-id``), else 401
UNAUTHENTICATED. Errors have vCenter's ``/api`` shape, ``{"error_type", "messages": [{"id",
"default_message", "args"}]}`` (vSphere Automation API, "Error" data structure), with the HTTP
status VMware's runtime maps each standard error to (``vmware.vapi.rest.lib``). Answers are built
with VMware's bindings and serialized by its runtime, as ``/api`` writes them.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs, unquote, urlsplit

from com.vmware.vcenter.namespace_management_client import (ClusterCompatibility, Clusters,
                                                             DistributedSwitchCompatibility, HostsConfig, LoadBalancers)
from vmware.vapi.bindings.converter import RestConverter, TypeConverter
from vmware.vapi.bindings.type import ListType
from vmware.vapi.data.serializers.cleanjson import DataValueConverter
from vmware.vapi.rest.lib import vapi_to_http_error_map

from .compatibility import capability, cluster_summary, enable_refusal, switch_summaries
from .inventory import SESSION_HEADER, SimulatorInventory
from .settings import StandInSettings
from .namespaces import INSTANCES, VM_CLASSES, NamespaceInstances, Refused
from .spec import SpecRejected, decode_enable_spec, decode_json, decode_load_balancer_update
from .supervisor import Fault, Supervisor, judge

log = logging.getLogger(__name__)

__all__ = ["NamespaceManagementStandIn", "EnableRequest", "LoadBalancerUpdate", "STAND_IN", "PREFIX",
           "LOAD_BALANCER_UPDATE_API"]

STAND_IN = "tkgs-runbook vCenter simulator (namespace-management stand-in)"
STAND_IN_HEADER = "X-Simulated-By"
PREFIX = "/api/vcenter/namespace-management/"
MAX_BODY = 1 << 20
LOAD_BALANCER_UPDATE_API = (7, 0, 3, 0)  # LoadBalancers.update: "added in vSphere API 7.0.3.0" (VMware's bindings)
# vCenter's answer to a request without a session (its /api, 7.0 and later).
UNAUTHENTICATED_MESSAGE = ("com.vmware.vapi.endpoint.method.authentication.required", "Authentication required.")


@dataclass(frozen=True)
class EnableRequest:
    """An enable the stand-in accepted: the cluster, the body as it came and the spec decoded from
    it (both hold the load balancer's password, so neither is shown)."""

    cluster: str
    body: str = field(repr=False)
    spec: Clusters.EnableSpec = field(repr=False)


@dataclass(frozen=True)
class LoadBalancerUpdate:
    """A load-balancer update the stand-in accepted (its spec may hold a password: never shown)."""

    cluster: str
    load_balancer: str
    spec: LoadBalancers.UpdateSpec = field(repr=False)


class _ApiError(Exception):
    def __init__(self, error_type: str, messages: list[tuple[str, str, list[str]]]) -> None:
        super().__init__(error_type)
        self.error_type, self.messages = error_type, messages

    @property
    def status(self) -> int:
        return vapi_to_http_error_map.get(f"com.vmware.vapi.std.errors.{self.error_type.lower()}", 400)

    def body(self) -> dict:
        return {"error_type": self.error_type,
                "messages": [{"id": i, "default_message": text, "args": list(args)} for i, text, args in self.messages]}


def _error(error_type: str, message_id: str, sentence: str, *args: str) -> _ApiError:
    return _ApiError(error_type, [(message_id, sentence, [str(a) for a in args])])


def _to_json(value: Any, binding_type) -> str:
    return DataValueConverter.convert_to_json(TypeConverter.convert_to_vapi(value, binding_type,
                                                                            RestConverter.SWAGGER_REST))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:  # no reverse lookup of the address (http.server's getfqdn)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address) -> None:
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def close_connections(self) -> None:
        """End the kept-alive connections too: a stopped stand-in must not answer on them."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class NamespaceManagementStandIn:
    """The stand-in, for one simulator. :meth:`start` listens (the port goes to the simulator's
    launcher), :meth:`attach` gives it the running simulator, :meth:`stop` ends it all.

    ``settings``: its times and the namespace load balancers are reached from, read at each enable."""

    def __init__(self, cert_file: Path, key_file: Path, settings: Optional[StandInSettings] = None) -> None:
        self.cert_file, self.key_file = Path(cert_file), Path(key_file)
        self.settings = settings or StandInSettings()
        self.enable_requests: list[EnableRequest] = []
        self.load_balancer_updates: list[LoadBalancerUpdate] = []
        self._refuse_updates: list[str] = []  # the refusals the next updates meet (a test's)
        self._lose_updates = 0  # how many of the next updates are accepted but never reach the Supervisor (a test's)
        self._faults: list[Fault] = []
        self._supervisors: dict[str, Supervisor] = {}
        self._lock = threading.Lock()
        self._inventory: Optional[SimulatorInventory] = None
        self._attached = threading.Event()
        self._server: Optional[_Server] = None
        self.namespaces = NamespaceInstances(self._supervisor_running, on_change=self._namespace_changed,
                                             config_seconds=lambda: self.settings.namespace_seconds)

    def __repr__(self) -> str:
        return f"<NamespaceManagementStandIn {self.url or 'not started'}>"

    @property
    def url(self) -> Optional[str]:
        return f"https://127.0.0.1:{self._server.server_port}" if self._server else None

    # --- life --------------------------------------------------------------------------------

    def start(self) -> str:
        """Listen on 127.0.0.1 (a free port) in a thread; returns the URL to proxy to."""
        stand_in = self

        class Handler(_Handler):
            owner = stand_in

        server = _Server(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, name="namespace-management-stand-in", daemon=True).start()
        return self.url  # type: ignore[return-value]

    def attach(self, inventory: SimulatorInventory) -> None:
        self._inventory = inventory
        self._attached.set()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        with self._lock:
            supervisors = list(self._supervisors.values())
            self._supervisors.clear()
        for supervisor in supervisors:
            supervisor.stop()
        if self._inventory is not None:
            self._inventory.close()

    # --- for the tests -----------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """``fault`` befalls the next enable of its cluster (any cluster when it names none)."""
        with self._lock:
            self._faults.append(fault)

    def enabled_clusters(self) -> list[str]:
        """The clusters that have a Supervisor (in whatever state), by managed object id."""
        with self._lock:
            return sorted(self._supervisors)

    def refuse_next_update(self, message: str) -> None:
        """The next load-balancer update is refused (INVALID_ARGUMENT, ``message``), nothing changed."""
        with self._lock:
            self._refuse_updates.append(message)

    def lose_next_update(self) -> None:
        """The next load-balancer update is accepted (and listed) but never reaches the Supervisor, whose
        controller goes on with what it had."""
        with self._lock:
            self._lose_updates += 1

    def supervisor(self, cluster: str) -> Optional[Supervisor]:
        with self._lock:
            return self._supervisors.get(cluster)

    def _namespace_changed(self, played, present: bool) -> None:
        supervisor = self.supervisor(played.spec.cluster)
        if supervisor is not None and supervisor.kubernetes is not None:
            supervisor.kubernetes.namespace_changed(played, present)

    def _supervisor_running(self, cluster: str) -> bool:
        supervisor = self.supervisor(cluster)
        return supervisor is not None and supervisor.config_status == "RUNNING"

    def _take_fault(self, cluster: str) -> Optional[Fault]:  # the caller holds the lock
        for fault in self._faults:
            if fault.cluster in (None, cluster):
                self._faults.remove(fault)
                return fault
        return None

    # --- the operations ----------------------------------------------------------------------

    def authenticate(self, session_id: str) -> None:
        if not self._attached.wait(timeout=30) or self._inventory is None:
            raise _error("SERVICE_UNAVAILABLE", "tkgs.stand_in.not_attached",
                         "The namespace-management stand-in is not attached to its simulator yet.")
        if not self._inventory.session_is_valid(session_id):
            raise _error("UNAUTHENTICATED", *UNAUTHENTICATED_MESSAGE)

    def list_clusters(self) -> str:
        with self._lock:
            summaries = [s.summary() for s in self._supervisors.values()]
        return _to_json(summaries, _list_of(Clusters.Summary))

    def get_cluster(self, cluster: str) -> str:
        supervisor = self.supervisor(cluster)
        if supervisor is None:
            raise self._not_enabled(cluster, self.settings.no_supervisor_error)
        return _to_json(supervisor.info(), Clusters.Info.get_binding_type())

    def capability(self) -> str:
        clusters, _ = self._inventory.compute()
        return _to_json(capability(clusters), HostsConfig.Info.get_binding_type())

    def cluster_compatibility(self, query: dict[str, list[str]]) -> str:
        provider, compatible = _provider(query), _flag(query, "compatible")
        clusters, switches = self._inventory.compute()
        summaries = [cluster_summary(c, switches, provider) for c in clusters]
        if compatible:
            summaries = [s for s in summaries if s.compatible]
        return _to_json(summaries, _list_of(ClusterCompatibility.Summary))

    def switch_compatibility(self, query: dict[str, list[str]]) -> str:
        provider, compatible = _provider(query), _flag(query, "compatible")
        wanted = (query.get("cluster") or [""])[0]
        if not wanted:
            raise _error("INVALID_ARGUMENT", "tkgs.stand_in.query.cluster",
                         "The query parameter cluster (a cluster's identifier) is required.")
        clusters, switches = self._inventory.compute()
        cluster = self._cluster_of(wanted, clusters)
        summaries = switch_summaries(cluster, switches, provider)
        if compatible is not None:
            summaries = [s for s in summaries if s.compatible == compatible]
        return _to_json(summaries, _list_of(DistributedSwitchCompatibility.Summary))

    def _cluster_of(self, moid: str, clusters):
        for found in clusters:
            if found.moid == moid:
                return found
        known = ", ".join(f"{c.moid} ({c.name})" for c in clusters) or "none"
        raise _error("NOT_FOUND", "tkgs.stand_in.cluster.not_found",
                     f"Cluster {moid} does not exist in this vCenter; its clusters, by managed object id: {known}.",
                     moid)

    def enable(self, cluster: str, body: bytes) -> None:
        try:
            spec = decode_enable_spec(body)  # vAPI decodes the input before the operation runs
        except SpecRejected as rejected:
            raise _ApiError(rejected.error_type, [(r.message.id, r.sentence, [str(a) for a in r.message.args])
                                                  for r in rejected.refusals]) from None
        name = self._cluster_name(cluster)
        clusters, switches = self._inventory.compute()
        refused = enable_refusal(self._cluster_of(cluster, clusters), switches)
        if refused is not None:
            error_type, reasons = refused
            raise _ApiError(error_type, [(r.id, r.sentence, list(r.args)) for r in reasons])
        problems = judge(spec)
        if problems:
            raise _ApiError("INVALID_ARGUMENT", [("tkgs.stand_in.enable.invalid", p, []) for p in problems])
        with self._lock:
            if cluster in self._supervisors:
                # No error is documented for this case; ALREADY_EXISTS is the standard error closest to it.
                status = self._supervisors[cluster].config_status
                raise _error("ALREADY_EXISTS", "tkgs.stand_in.enable.enabled",
                             f"Cluster {cluster} already has a Supervisor ({status}); disable it first.", cluster)
            settings = self.settings
            from tkgs_simulators.kubernetes.supervisor_api import SupervisorKubernetes

            kubernetes = SupervisorKubernetes(spec, settings.load_balancer_netns, settings=settings,
                                              check_login=self._inventory.login_works,
                                              policy_name=self._inventory.storage_policy_name)
            supervisor = Supervisor(cluster, name, spec, find_appliance=self._inventory.appliance_at,
                                    netns=settings.load_balancer_netns, timeout=settings.load_balancer_timeout,
                                    config_seconds=settings.config_seconds, fault=self._take_fault(cluster),
                                    on_removed=self._removed, ca_files=(self.cert_file, self.key_file),
                                    reconcile_seconds=settings.reconcile_seconds,
                                    health_check_interval_ms=settings.health_check_interval_ms, kubernetes=kubernetes)
            self._supervisors[cluster] = supervisor
            self.enable_requests.append(EnableRequest(cluster, body.decode("utf-8", errors="replace"), spec))
        supervisor.start()

    def create_namespace(self, body: bytes) -> None:
        from com.vmware.vcenter.namespaces_client import Instances

        try:
            spec = decode_json(Instances.CreateSpec.get_binding_type(), body)
        except SpecRejected as rejected:
            raise _ApiError(rejected.error_type, [(r.message.id, r.sentence, [str(a) for a in r.message.args])
                                                  for r in rejected.refusals]) from None
        self._cluster_name(spec.cluster)
        self._namespaces_call(lambda: self.namespaces.create(spec))

    def _namespaces_call(self, work):
        try:
            return work()
        except Refused as refused:
            raise _error(refused.error_type, refused.message_id, refused.sentence) from None

    def serves_load_balancer_update(self) -> bool:
        """Whether the simulator's vCenter has ``LoadBalancers.update`` (its API 7.0.3.0 or later)."""
        return self._inventory is not None and self._inventory.api_version() >= LOAD_BALANCER_UPDATE_API

    def update_load_balancer(self, cluster: str, load_balancer: str, body: bytes) -> None:
        try:
            spec = decode_load_balancer_update(body)
        except SpecRejected as rejected:
            raise _ApiError(rejected.error_type, [(r.message.id, r.sentence, [str(a) for a in r.message.args])
                                                  for r in rejected.refusals]) from None
        self._cluster_name(cluster)
        supervisor = self.supervisor(cluster)
        if supervisor is None:
            raise self._not_enabled(cluster, "UNSUPPORTED")  # "if the specified cluster does not have vSphere
            # Namespaces enabled" (the bindings' LoadBalancers.update)
        with self._lock:
            refusal = self._refuse_updates.pop(0) if self._refuse_updates else None
            lost, self._lose_updates = self._lose_updates > 0, max(self._lose_updates - 1, 0)
        if refusal is not None:
            raise _error("INVALID_ARGUMENT", "tkgs.stand_in.load_balancer.refused", refusal)
        problem = None if lost else supervisor.update_load_balancer(load_balancer, spec)
        if problem is not None:
            raise _error(*problem)
        with self._lock:
            self.load_balancer_updates.append(LoadBalancerUpdate(cluster, load_balancer, spec))

    def disable(self, cluster: str) -> None:
        self._cluster_name(cluster)
        supervisor = self.supervisor(cluster)
        if supervisor is None:
            raise self._not_enabled(cluster)
        self.namespaces.remove_on(cluster)
        supervisor.disable()

    def _removed(self, supervisor: Supervisor) -> None:
        with self._lock:
            if self._supervisors.get(supervisor.cluster) is supervisor:
                del self._supervisors[supervisor.cluster]

    def _cluster_name(self, cluster: str) -> str:
        clusters = self._inventory.clusters() if self._inventory else {}
        if cluster not in clusters:
            known = ", ".join(f"{i} ({name})" for i, name in sorted(clusters.items())) or "none"
            raise _error("NOT_FOUND", "tkgs.stand_in.cluster.not_found",
                         f"Cluster {cluster} does not exist in this vCenter; its clusters, by managed object id: "
                         f"{known}.", cluster)
        return clusters[cluster]

    def _not_enabled(self, cluster: str, error_type: str = "NOT_FOUND") -> _ApiError:
        self._cluster_name(cluster)
        return _error(error_type, "tkgs.stand_in.cluster.not_enabled",
                      f"Cluster {cluster} has no Supervisor (Workload Management is not enabled on it).", cluster)


def _list_of(struct_class) -> ListType:
    return ListType(struct_class.get_binding_type())


def _provider(query: dict[str, list[str]]):
    """The filter's network_provider (unset: NSXT_CONTAINER_PLUGIN, as the bindings document it)."""
    given = (query.get("network_provider") or [""])[0]
    if not given:
        return Clusters.NetworkProvider.NSXT_CONTAINER_PLUGIN
    for known in Clusters.NetworkProvider.get_values():
        if known == given:
            return known
    raise _error("INVALID_ARGUMENT", "tkgs.stand_in.query.network_provider",
                 f"network_provider is {given!r}; it takes one of "
                 f"{', '.join(str(v) for v in Clusters.NetworkProvider.get_values())}.")


def _flag(query: dict[str, list[str]], name: str) -> Optional[bool]:
    given = (query.get(name) or [""])[0].lower()
    if given in ("", "true", "false"):
        return None if not given else given == "true"
    raise _error("INVALID_ARGUMENT", f"tkgs.stand_in.query.{name}", f"{name} is {given!r}; it takes true or false.")


class _Handler(BaseHTTPRequestHandler):
    owner: NamespaceManagementStandIn
    server_version = "namespace-management-stand-in"
    protocol_version = "HTTP/1.1"  # keep-alive behind the simulator's proxy

    def log_message(self, format: str, *args) -> None:  # the request line only: no headers, no session id
        log.debug("stand-in: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._serve("OPTIONS")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve("HEAD")

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():  # http.server cannot read it
            self.close_connection = True
            raise _error("INVALID_REQUEST", "tkgs.stand_in.body.chunked",
                         "This stand-in reads a request body only with a Content-Length.")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise _error("INVALID_REQUEST", "tkgs.stand_in.body.too_large",
                         f"The request body is larger than {MAX_BODY} bytes.")
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self, method: str) -> None:
        try:
            body = self._body()
            self.owner.authenticate(self.headers.get(SESSION_HEADER, ""))
            answer = self._route(method, body)
        except _ApiError as error:
            self._send(error.status, json.dumps(error.body()))
        except Exception as exc:  # noqa: BLE001 (a stand-in's bug answers as vCenter's would: 500)
            log.exception("namespace-management stand-in failed on %s %s", method, urlsplit(self.path).path)
            self._send(500, json.dumps(_error("INTERNAL_SERVER_ERROR", "tkgs.stand_in.internal",
                                              f"The stand-in failed: {type(exc).__name__}.").body()))
        else:
            if answer is None:
                self._send(204, None)
            else:
                self._send(200, answer)

    def _route(self, method: str, body: bytes) -> Optional[str]:
        parts = urlsplit(self.path)
        action = (parse_qs(parts.query).get("action") or [""])[0]
        if parts.path.rstrip("/").startswith((INSTANCES, VM_CLASSES)) and not action:
            return self._route_namespaces(method, parts.path.rstrip("/"), body)
        rest = parts.path[len(PREFIX):] if parts.path.startswith(PREFIX) else None
        segments = [unquote(s) for s in rest.strip("/").split("/")] if rest is not None else []
        query = parse_qs(parts.query)
        if segments == ["clusters"] and method == "GET" and not action:
            return self.owner.list_clusters()
        if len(segments) == 1 and method == "GET" and not action:
            read = {"capability": lambda: self.owner.capability(),
                    "cluster-compatibility": lambda: self.owner.cluster_compatibility(query),
                    "distributed-switch-compatibility": lambda: self.owner.switch_compatibility(query)}.get(segments[0])
            if read is not None:
                return read()
        if len(segments) == 2 and segments[0] == "clusters" and segments[1]:
            cluster = segments[1]
            if method == "GET" and not action:
                return self.owner.get_cluster(cluster)
            if method == "POST" and action == "enable":
                self.owner.enable(cluster, body)
                return None
            if method == "POST" and action == "disable":
                self.owner.disable(cluster)
                return None
        if (len(segments) == 4 and segments[0] == "clusters" and segments[2] == "load-balancers" and method == "PATCH"
                and not action and self.owner.serves_load_balancer_update()):
            self.owner.update_load_balancer(segments[1], segments[3], body)
            return None
        what = f"{method} {parts.path}" + (f"?action={action}" if action else "")
        raise _error("OPERATION_NOT_FOUND", "tkgs.stand_in.operation.not_found",
                     f"{what} is not an operation this stand-in plays (it plays list, get, enable and disable "
                     f"of namespace-management clusters, reads their capability and compatibility, and, from API "
                     f"7.0.3.0, updates their load balancers).")

    def _route_namespaces(self, method: str, path: str, body: bytes) -> Optional[str]:
        from com.vmware.vcenter.namespace_management_client import VirtualMachineClasses
        from com.vmware.vcenter.namespaces_client import Instances

        owner, namespaces = self.owner, self.owner.namespaces
        if path == INSTANCES and method == "GET":
            return _to_json(namespaces.summaries(), _list_of(Instances.Summary))
        if path == INSTANCES and method == "POST":
            owner.create_namespace(body)
            return None
        name = unquote(path[len(INSTANCES) + 1:]) if path.startswith(INSTANCES + "/") else ""
        if name and "/" not in name and method == "GET":
            return owner._namespaces_call(lambda: _to_json(namespaces.info(name), Instances.Info.get_binding_type()))
        if name and "/" not in name and method == "DELETE":
            owner._namespaces_call(lambda: namespaces.delete(name))
            return None
        if path == VM_CLASSES and method == "GET":
            return _to_json(namespaces.vm_classes(), _list_of(VirtualMachineClasses.Info))
        wanted = unquote(path[len(VM_CLASSES) + 1:]) if path.startswith(VM_CLASSES + "/") else ""
        if wanted and method == "GET":
            for info in namespaces.vm_classes():
                if info.id == wanted:
                    return _to_json(info, VirtualMachineClasses.Info.get_binding_type())
            raise _error("NOT_FOUND", "vcenter.wcp.vmclass.not_found", f"Virtual machine class {wanted} does not "
                                                                        f"exist.", wanted)
        raise _error("OPERATION_NOT_FOUND", "tkgs.stand_in.operation.not_found",
                     f"{method} {path} is not an operation this stand-in plays (it plays create, get, list and delete "
                     f"of namespaces, and list and get of VM classes).")

    def _send(self, status: int, text: Optional[str]) -> None:
        data = text.encode("utf-8") if text is not None else b""
        self.send_response(status)
        self.send_header(STAND_IN_HEADER, STAND_IN)
        if text is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
