"""The Supervisor's Kubernetes API, ``/wcp/login``, and the controllers behind them, as the stand-in plays them.

Served by the played control plane's servers (:class:`~tkgs_simulators.supervisor.SupervisorControlPlane`),
so a client reaches them through the appliance's real HAProxy at the Supervisor's virtual IP, on 443 and
6443:

* ``GET /wcp/loginbanner`` (what ``kubectl vsphere login`` asks first; lamw's basic lab, issue 6) and
  ``POST /wcp/login`` with HTTP Basic auth: the user and password are checked by logging in to vCenter
  (as the Supervisor checks them against vCenter's SSO), and the answer is ``{"session_id": ...}``, a
  token the API then takes as ``Authorization: Bearer`` (kubernetes-sigs/vsphere-csi-driver
  ``tests/e2e/util.go``, ``GetWCPSessionId``: 200 and ``session_id``); 401 otherwise;
* the API (:class:`~.api.KubernetesApi`): each vSphere Namespace as a namespace, with a
  ``VirtualMachineClassBinding`` per class bound and its storage policy as a ``StorageClass``; vCenter's
  VM classes; the Tanzu Kubernetes releases the stand-in offers (a fixed list: a real Supervisor lists
  those of its subscribed library); ``TanzuKubernetesCluster`` in ``run.tanzu.vmware.com`` v1alpha2
  (7.0 Update 3; ``tkc_api_version`` v1alpha1 plays 7.0 Update 1 and 2); ``VirtualMachine``,
  ``VirtualMachineService`` (``vmoperator.vmware.com/v1alpha1``) and ``Secret``.

Behind it: a cluster controller (:mod:`.guest_cluster`) playing each TanzuKubernetesCluster, and the
load-balancer controller (:class:`VirtualMachineServices`): each ``VirtualMachineService`` of type
LoadBalancer gets a virtual IP from the enable spec's load-balancer ranges (the Supervisor's own is the
first), and the appliance is programmed through its Data Plane API (frontend on the virtual IP and each
port, the selected VMs' addresses on each ``targetPort`` behind it); once HAProxy serves it,
``status.loadBalancer.ingress[0].ip`` says it. A Service removed has its frontend removed.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import secrets
import threading
from typing import Callable, Optional

from ..appliance.netns import run_in_netns
from ..supervisor import ControlPlaneServer, reconcile_load_balancer, remove_load_balancer
from .api import CORE, KubernetesApi, Resource, serve

log = logging.getLogger(__name__)

__all__ = ["SupervisorKubernetes", "VirtualMachineServices", "RELEASES", "STAND_IN"]

STAND_IN = "tkgs-runbook Supervisor Kubernetes API (stand-in)"
VMOP, RUN = "vmoperator.vmware.com", "run.tanzu.vmware.com"
RELEASES = ("v1.20.12---vmware.1-tkg.1.b9a42f3", "v1.21.6---vmware.1-tkg.1.b3d708a")
BANNER = "This Supervisor is played by tkgs-runbook's vCenter simulator (a stand-in)."


def _conditions(obj: dict) -> str:
    conditions = obj.get("status", {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    return ready.get("status", "Unknown") if ready else "Unknown"


def _tkc_columns(version: str):
    if version == "v1alpha1":
        return (("Control Plane", "integer", lambda o: o["spec"]["topology"]["controlPlane"].get("count", 1)),
                ("Worker", "integer", lambda o: o["spec"]["topology"]["workers"].get("count", 0)),
                ("Distribution", "string", lambda o: o["spec"].get("distribution", {}).get("version", "")),
                ("Phase", "string", lambda o: o.get("status", {}).get("phase", "")))
    return (("Control Plane", "integer", lambda o: o["spec"]["topology"]["controlPlane"].get("replicas", 1)),
            ("Worker", "integer", lambda o: sum(p.get("replicas", 0) for p in o["spec"]["topology"]["nodePools"])),
            ("TKR Name", "string", lambda o: o["spec"]["topology"]["controlPlane"].get("tkr", {}).get(
                "reference", {}).get("name", "")),
            ("Ready", "string", _conditions))


def resources(tkc_version: str) -> list[Resource]:
    return [
        Resource(CORE, "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
                 columns=(("Status", "string", lambda o: o.get("status", {}).get("phase", "")),)),
        Resource(CORE, "v1", "Secret", "secrets",
                 columns=(("Type", "string", lambda o: o.get("type", "")),
                          ("Data", "integer", lambda o: len(o.get("data") or {})))),
        Resource("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short_names=("sc",),
                 columns=(("Provisioner", "string", lambda o: o.get("provisioner", "")),)),
        Resource(VMOP, "v1alpha1", "VirtualMachineClass", "virtualmachineclasses", namespaced=False,
                 short_names=("vmclass",),
                 columns=(("CPU", "integer", lambda o: o["spec"]["hardware"]["cpus"]),
                          ("Memory", "string", lambda o: o["spec"]["hardware"]["memory"]))),
        Resource(VMOP, "v1alpha1", "VirtualMachineClassBinding", "virtualmachineclassbindings",
                 short_names=("vmclassbinding",),
                 columns=(("VirtualMachineClass", "string", lambda o: o["classRef"]["name"]),)),
        Resource(VMOP, "v1alpha1", "VirtualMachine", "virtualmachines", short_names=("vm",),
                 columns=(("Power State", "string", lambda o: o.get("status", {}).get("powerState", "")),
                          ("IP", "string", lambda o: o.get("status", {}).get("vmIp", "")))),
        Resource(VMOP, "v1alpha1", "VirtualMachineService", "virtualmachineservices", short_names=("vmservice",),
                 columns=(("Type", "string", lambda o: o["spec"].get("type", "")),
                          ("External IP", "string", lambda o: ", ".join(i.get("ip", "") for i in o.get(
                              "status", {}).get("loadBalancer", {}).get("ingress") or []) or "<pending>"))),
        Resource(RUN, "v1alpha1", "TanzuKubernetesRelease", "tanzukubernetesreleases", namespaced=False,
                 short_names=("tkr",),
                 columns=(("Version", "string", lambda o: o["spec"].get("version", "")),
                          ("Ready", "string", _conditions))),
        Resource(RUN, tkc_version, "TanzuKubernetesCluster", "tanzukubernetesclusters", short_names=("tkc",),
                 columns=_tkc_columns(tkc_version)),
    ]


class SupervisorKubernetes:
    """One Supervisor's Kubernetes side. ``spec``: its enable spec (the workload network, the load balancer);
    ``lab``: the network namespace the appliance and the VMs are in (None: no VMs are played);
    ``check_login(user, password)``: whether vCenter takes them; ``policy_name(id)``: a storage policy's
    name; ``settings``: the stand-in's (read at each use)."""

    def __init__(self, spec, lab: Optional[str], *, check_login: Callable[[str, str], bool],
                 policy_name: Callable[[str], str], settings) -> None:
        self.spec, self.lab, self.settings = spec, lab, settings
        self._check_login, self._policy_name = check_login, policy_name
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self.api = KubernetesApi(resources(getattr(settings, "tkc_api_version", "v1alpha2")), STAND_IN,
                                 authenticate=self._bearer)
        self.logins: list[tuple[str, bool]] = []  # (user, accepted), for the tests
        for name, (cpus, memory) in _classes().items():
            self.api.put(self.api.resource("virtualmachineclasses", VMOP), {
                "metadata": {"name": name}, "spec": {"hardware": {"cpus": cpus, "memory": f"{memory}Mi"}}},
                create=True)
        for release in RELEASES:
            self.api.put(self.api.resource("tanzukubernetesreleases", RUN), {
                "metadata": {"name": release}, "spec": {"version": release.replace("---", "+"),
                                                        "kubernetesVersion": release.split("---")[0]},
                "status": {"conditions": [{"type": "Ready", "status": "True"},
                                          {"type": "Compatible", "status": "True"}]}}, create=True)
        from .guest_cluster import GuestClusters

        self.load_balancer = VirtualMachineServices(self)
        self.clusters = GuestClusters(self)
        self.api.watchers.append(self.clusters.changed)
        self.api.finalizers[f"tanzukubernetesclusters.{RUN}"] = self.clusters.finalize
        self.api.watchers.append(self.load_balancer.changed)

    def __repr__(self) -> str:  # the spec holds the Data Plane API's password
        return f"<SupervisorKubernetes lab={self.lab}>"

    # --- /wcp -------------------------------------------------------------------------------------

    def serves(self, path: str) -> bool:
        return path.split("?", 1)[0] in ("/wcp/login", "/wcp/loginbanner") or self.api.serves(path)

    def serve(self, handler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        if path == "/wcp/loginbanner" and method == "GET":
            return self._send(handler, 200, BANNER.encode(), "text/plain")
        if path == "/wcp/login":
            if method != "POST":
                return self._send(handler, 405, b'{"message": "POST only"}')
            return self._login(handler)
        serve(self.api, handler, method)

    def _login(self, handler) -> None:
        import json

        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(min(length, 1 << 16))
        auth = handler.headers.get("Authorization", "")
        user, password = "", ""
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user = ""
        accepted = bool(user) and self._check_login(user, password)
        self.logins.append((user, accepted))
        if not accepted:
            return self._send(handler, 401, json.dumps({"message": "Unauthorized: invalid credentials"}).encode())
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = user
        self._send(handler, 200, json.dumps({"session_id": token}).encode())

    def _bearer(self, handler) -> Optional[str]:
        auth = handler.headers.get("Authorization", "")
        with self._lock:
            return self._tokens.get(auth[7:]) if auth.startswith("Bearer ") else None

    @staticmethod
    def _send(handler, status: int, data: bytes, kind: str = "application/json") -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("X-Simulated-By", STAND_IN)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    # --- vSphere Namespaces, as the Supervisor holds them -----------------------------------------------

    def namespace_changed(self, played, present: bool) -> None:
        """A vSphere Namespace RUNNING (``present``) or gone: its namespace, class bindings, storage class."""
        api, name = self.api, played.name
        namespaces = api.resource("namespaces")
        bindings = api.resource("virtualmachineclassbindings", VMOP)
        if not present:  # what the namespace held goes with it: its clusters first, as their deletion does
            clusters = api.resource("tanzukubernetesclusters", RUN)
            for cluster in api.list(clusters, name):
                self.clusters.finalize(cluster)
                api.remove(clusters, name, cluster["metadata"]["name"])
            for binding in api.list(bindings, name):
                api.remove(bindings, name, binding["metadata"]["name"])
            if api.get(namespaces, "", name) is not None:
                api.remove(namespaces, "", name)
            return
        api.put(namespaces, {"metadata": {"name": name, "labels": {"vSphereClusterID": played.spec.cluster}},
                             "status": {"phase": "Active"}}, create=api.get(namespaces, "", name) is None)
        for vm_class in played.vm_classes:
            api.put(bindings, {"metadata": {"name": vm_class, "namespace": name},
                               "classRef": {"apiVersion": f"{VMOP}/v1alpha1", "kind": "VirtualMachineClass",
                                            "name": vm_class}}, create=True)
        classes = api.resource("storageclasses", "storage.k8s.io")
        for policy in played.storage_policies:
            label = _label(self._policy_name(policy) or policy)
            if api.get(classes, "", label) is None:
                api.put(classes, {"metadata": {"name": label}, "provisioner": "csi.vsphere.vmware.com",
                                  "parameters": {"storagePolicyID": policy}, "reclaimPolicy": "Delete",
                                  "volumeBindingMode": "Immediate"}, create=True)

    # --- the workload network ----------------------------------------------------------------------------

    def workload(self) -> tuple[str, str, list[str]]:
        """The primary workload network's CIDR, gateway and its addresses for VMs after the Supervisor's three."""
        primary = self.spec.workload_networks_spec.supervisor_primary_workload_network.vsphere_network
        network = ipaddress.IPv4Network(f"{primary.gateway}/{primary.subnet_mask}", strict=False)
        addresses = [str(ipaddress.IPv4Address(r.address) + i) for r in primary.address_ranges or ()
                     for i in range(min(r.count, 512))]
        return str(network), primary.gateway, addresses[3:]

    def stop(self) -> None:
        self.clusters.stop()
        self.load_balancer.stop()


def _label(name: str) -> str:
    import re

    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", name.lower())).strip("-")[:63]


def _classes() -> dict:
    from ..namespace_management.namespaces import DEFAULT_VM_CLASSES

    return DEFAULT_VM_CLASSES


class VirtualMachineServices:
    """The Supervisor's load-balancer controller for VirtualMachineServices of type LoadBalancer: a virtual IP
    each from the load balancer's ranges, the appliance programmed through its Data Plane API, the address in
    the object's status once HAProxy serves it. ``settings.load_balancer_stalled``: it gives no address (a
    test's fault: the controller down)."""

    def __init__(self, supervisor: SupervisorKubernetes) -> None:
        self.supervisor = supervisor
        balancer = supervisor.spec.load_balancer_config_spec
        self._haproxy = balancer.ha_proxy_config_create_spec  # holds the password: never shown
        self._pool = [str(ipaddress.IPv4Address(r.address) + i) for r in balancer.address_ranges
                      for i in range(min(r.count, 1024))][1:]  # the first is the Supervisor's own
        self._held: dict[tuple[str, str], str] = {}  # (namespace, name) -> virtual IP
        self._programmed: dict[tuple[str, str], list[tuple[str, int]]] = {}  # -> the frontends it made, each's port
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def changed(self, event: str, res: Resource, obj: dict) -> None:
        if res.plural in ("virtualmachineservices", "virtualmachines"):
            self._ensure_running()
            self._wake.set()

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None and self.supervisor.lab is not None:
                self._thread = threading.Thread(target=self._loop, name="vmservice-load-balancer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception as exc:  # noqa: BLE001 (a controller logs and goes on)
                log.info("vmservice load balancer: %s", exc)
            self._wake.wait(getattr(self.supervisor.settings, "reconcile_seconds", 1.0))
            self._wake.clear()

    def reconcile(self) -> None:
        api = self.supervisor.api
        services = api.resource("virtualmachineservices", VMOP)
        vms = api.resource("virtualmachines", VMOP)
        present = {}
        for obj in api.list(services):
            if obj["spec"].get("type") == "LoadBalancer":
                present[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        for key in [k for k in self._held if k not in present]:
            self._unprogram(key)
        if getattr(self.supervisor.settings, "load_balancer_stalled", False):
            return
        for key, obj in present.items():
            vip = self._held.get(key) or self._allocate(key)
            if vip is None:
                continue
            selector = obj["spec"].get("selector") or {}
            members = [vm for vm in api.list(vms, key[0]) if vm.get("status", {}).get("vmIp")
                       and all((vm["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
            frontends = []
            try:
                for port in obj["spec"].get("ports") or []:
                    name = f"{key[0]}-{key[1]}-{port['port']}"[:60]
                    servers = [ControlPlaneServer(vm["metadata"]["name"], vm["status"]["vmIp"],
                                                  int(port["targetPort"])) for vm in members]
                    self._on_appliance(lambda url, name=name, servers=servers, port=port: reconcile_load_balancer(
                        url, self._haproxy.username, self._haproxy.password, self._haproxy.certificate_authority_chain,
                        vip, servers, name=name, ports=(int(port["port"]),),
                        check_interval_ms=getattr(self.supervisor.settings, "health_check_interval_ms", None),
                        explain=False))
                    frontends.append((name, int(port["port"])))
            except Exception as exc:  # noqa: BLE001 (no address until HAProxy serves it)
                log.info("vmservice %s/%s: %s", *key, exc)
                continue
            self._programmed[key] = frontends
            ingress = obj.get("status", {}).get("loadBalancer", {}).get("ingress") or []
            if [i.get("ip") for i in ingress] != [vip]:
                obj["status"] = {"loadBalancer": {"ingress": [{"ip": vip}]}}
                api.put(services, obj)

    def _on_appliance(self, work) -> None:
        for server in self._haproxy.servers:
            url = f"https://{server.host}:{server.port}"
            run_in_netns(self.supervisor.lab, lambda: work(url))

    def _allocate(self, key: tuple[str, str]) -> Optional[str]:
        taken = set(self._held.values())
        for address in self._pool:
            if address not in taken:
                self._held[key] = address
                return address
        return None

    def _unprogram(self, key: tuple[str, str]) -> None:
        for name, port in self._programmed.pop(key, []):
            try:
                self._on_appliance(lambda url, name=name, port=port: remove_load_balancer(
                    url, self._haproxy.username, self._haproxy.password, self._haproxy.certificate_authority_chain,
                    name=name, ports=(port,)))
            except Exception as exc:  # noqa: BLE001
                log.info("removing %s: %s", name, exc)
        self._held.pop(key, None)

    def held(self) -> dict:
        return dict(self._held)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        for key in list(self._programmed):
            self._unprogram(key)

