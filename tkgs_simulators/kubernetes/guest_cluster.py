"""Tanzu Kubernetes clusters as the stand-in plays them: what the Supervisor's cluster controllers (TKG
service, Cluster API's vSphere provider) and the cluster itself do once a TanzuKubernetesCluster is made.

For each cluster, in order, its ``status.conditions`` saying where it has got to (cluster-api ``Condition``:
type, status, reason, message, lastTransitionTime):

1. checked: its release a TanzuKubernetesRelease, its VM classes bound to the namespace, its storage
   class one of the namespace's (a condition False naming what is missing otherwise);
2. its VMs (``VirtualMachine`` objects, labelled ``capv.vmware.com/cluster.name`` and
   ``capv.vmware.com/cluster.role`` controlplane or node) started on the workload network, each a
   network namespace (:mod:`.vms`) at an address of the primary workload range;
3. its API's endpoint: the ``VirtualMachineService`` ``<cluster>-control-plane-service`` (port 6443 to
   6443, the control plane selected); until the load balancer gives it an address,
   ``LoadBalancerReady`` is False with reason ``WaitingForLoadBalancerIP`` and the message
   "VirtualMachineService LB does not yet have VIP assigned" (kubernetes-sigs/cluster-api-provider-vsphere
   ``pkg/services/vmoperator/control_plane_endpoint.go``, ``apis/vmware/v1beta1/condition_consts.go``),
   and ``ControlPlaneReady`` is False, ``WaitingForClusterInfrastructure``;
4. its API server (:class:`~.api.KubernetesApi`, TLS from the cluster's own CA, naming the virtual IP;
   a client certificate of that CA for ``kubernetes-admin``) on the control-plane VM's 6443, its nodes
   registered; the admin kubeconfig in the Supervisor secret ``<cluster>-kubeconfig`` (``data.value``);
   then every condition True, ``phase: running``, ``apiEndpoints`` the virtual IP.

In the cluster: Deployments get pods (Running, an address of the pods' network, a node each in turn);
a Service gets a cluster address of the services' network and, for NodePort and LoadBalancer, a node
port (30000-32767); a LoadBalancer Service is what the vsphere-paravirtual cloud provider makes of it
(kubernetes/cloud-provider-vsphere ``pkg/cloudprovider/vsphereparavirtual/vmservice/vmservice.go``): a
VirtualMachineService in the Supervisor namespace named ``<cluster>-<md5(name.namespace), 21 hex>``, each
port mapping ``port`` to the node port, the worker VMs selected; its address copied back to the
Service's ``status.loadBalancer``; the Service removed, the VirtualMachineService goes too. Each worker
serves each node port with a real HTTP server answering as the Service's pods do: the stand-in plays
Kubernetes' agnhost ``netexec`` (kubernetes/kubernetes ``test/images/agnhost/netexec``), whose
``/hostname`` answers the pod's name, each request answered by the pods in turn, as kube-proxy spreads
them.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import itertools
import logging
import secrets
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from typing import Optional

from .api import CORE, KubernetesApi, Resource, now, serve
from .vms import WorkloadVm

log = logging.getLogger(__name__)

__all__ = ["GuestClusters", "GuestCluster", "STAND_IN"]

STAND_IN = "tkgs-runbook Tanzu Kubernetes cluster API (stand-in)"
VMOP, RUN = "vmoperator.vmware.com", "run.tanzu.vmware.com"
CLUSTER_LABEL, ROLE_LABEL = "capv.vmware.com/cluster.name", "capv.vmware.com/cluster.role"
NODE_PORTS = range(30000, 32768)
MAX_CHECKSUM = 21


def condition(kind: str, status: bool, reason: str = "", message: str = "") -> dict:
    return {"type": kind, "status": "True" if status else "False", "lastTransitionTime": now(),
            **({"reason": reason, "severity": "Info"} if reason else {}), **({"message": message} if message else {})}


def vm_service_name(cluster: str, service: str, namespace: str) -> str:
    return f"{cluster}-{hashlib.md5(f'{service}.{namespace}'.encode()).hexdigest()[:MAX_CHECKSUM]}"  # noqa: S324


def _topology(spec: dict, version: str) -> tuple[int, str, int, str, str, str]:
    """(control-plane count, class, workers, class, storage class, release) of a v1alpha1 or v1alpha2 spec."""
    top = spec.get("topology") or {}
    cp = top.get("controlPlane") or {}
    if version == "v1alpha1":
        workers = top.get("workers") or {}
        return (int(cp.get("count", 1)), cp.get("class", ""), int(workers.get("count", 0)), workers.get("class", ""),
                cp.get("storageClass", ""), (spec.get("distribution") or {}).get("version", ""))
    pools = top.get("nodePools") or [{}]
    release = ((cp.get("tkr") or {}).get("reference") or {}).get("name", "")
    return (int(cp.get("replicas", 1)), cp.get("vmClass", ""), sum(int(p.get("replicas", 0)) for p in pools),
            pools[0].get("vmClass", ""), cp.get("storageClass", ""), release)


def _networks(spec: dict) -> tuple[str, str]:
    network = (spec.get("settings") or {}).get("network") or {}
    pods = ((network.get("pods") or {}).get("cidrBlocks") or ["192.168.0.0/16"])[0]
    services = ((network.get("services") or {}).get("cidrBlocks") or ["10.96.0.0/12"])[0]
    return pods, services


class GuestClusters:
    """Every TanzuKubernetesCluster of one Supervisor, played."""

    def __init__(self, supervisor) -> None:
        self.supervisor = supervisor
        self.played: dict[tuple[str, str], GuestCluster] = {}
        self._used: set[str] = set()  # workload addresses taken by VMs
        self._lock = threading.Lock()

    def changed(self, event: str, res: Resource, obj: dict) -> None:
        if res.plural != "tanzukubernetesclusters":
            return
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self._lock:
            if event == "ADDED" and key not in self.played:
                self.played[key] = GuestCluster(self, key[0], key[1], res)
                threading.Thread(target=self.played[key].build, name=f"tkc-{key[1]}", daemon=True).start()
            elif event == "DELETED" and key in self.played:  # removed without its finalizer (its namespace went)
                self.played.pop(key).stop()

    def finalize(self, obj: dict) -> None:
        """What deleting a cluster does before it goes (the TKG service's and Cluster API's controllers, through
        owner references): its phase ``deleting``, its VMs stopped and their ``VirtualMachine`` objects, its
        VirtualMachineServices (its API's and its LoadBalancer Services') and its kubeconfig secret removed,
        its workload addresses free again. The load-balancer controller then removes their frontends."""
        api, (namespace, name) = self.supervisor.api, (obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self._lock:
            played = self.played.pop((namespace, name), None)
        if played is not None:
            played._status("deleting", (obj.get("status") or {}).get("conditions") or [])
            played.stop()
        owned = (("virtualmachineservices", CLUSTER_LABEL), ("virtualmachineservices", f"{RUN}/cluster.name"),
                 ("virtualmachines", CLUSTER_LABEL))
        for plural, label in owned:
            res = api.resource(plural, VMOP)
            for held in api.list(res, namespace):
                if (held["metadata"].get("labels") or {}).get(label) == name:
                    api.remove(res, namespace, held["metadata"]["name"])
        secrets_res = api.resource("secrets")
        if api.get(secrets_res, namespace, f"{name}-kubeconfig") is not None:
            api.remove(secrets_res, namespace, f"{name}-kubeconfig")
        if played is not None:
            with self._lock:
                self._used -= {vm.address for vm in played.vms}

    def addresses(self, count: int) -> list[str]:
        _, _, free = self.supervisor.workload()
        with self._lock:
            chosen = [a for a in free if a not in self._used][:count]
            self._used.update(chosen)
        if len(chosen) < count:
            raise RuntimeError(f"the primary workload network's ranges have {len(chosen)} free addresses; {count} "
                               f"VMs need one each")
        return chosen

    def stop(self) -> None:
        with self._lock:
            played, self.played = list(self.played.values()), {}
        for cluster in played:
            cluster.stop()


class GuestCluster:
    """One TanzuKubernetesCluster: its VMs, its API, its workloads."""

    def __init__(self, owner: GuestClusters, namespace: str, name: str, res: Resource) -> None:
        self.owner, self.namespace, self.name, self.res = owner, namespace, name, res
        self.supervisor = owner.supervisor
        self.vms: list[WorkloadVm] = []
        self.api: Optional[KubernetesApi] = None
        self._stop = threading.Event()
        self._node_ports: dict[int, tuple[str, str]] = {}  # node port -> (service namespace, name)
        self._ports = iter(NODE_PORTS)
        self._ips: dict[str, object] = {}

    # --- its status in the Supervisor ----------------------------------------------------------------

    def _status(self, phase: str, conditions: list[dict], **more) -> None:
        api = self.supervisor.api
        obj = api.get(self.res, self.namespace, self.name)
        if obj is None:
            return
        status = {"phase": phase, "conditions": conditions, **more}
        if obj.get("status") != status:
            obj["status"] = status
            api.put(self.res, obj)

    def _waiting(self, ready_reason: str, message: str, *, load_balancer: Optional[tuple[bool, str, str]] = None,
                 control_plane: Optional[tuple[bool, str, str]] = None) -> list[dict]:
        conditions = [condition("Ready", False, ready_reason, message)]
        if control_plane is not None:
            conditions.append(condition("ControlPlaneReady", *control_plane))
        if load_balancer is not None:
            conditions.append(condition("LoadBalancerReady", *load_balancer))
        return conditions

    # --- the build -------------------------------------------------------------------------------

    def build(self) -> None:
        try:
            self._build()
        except Exception as exc:  # noqa: BLE001 (what went wrong, as the cluster's conditions say it)
            log.info("tanzu kubernetes cluster %s: %s", self.name, exc)
            self._status("failed", self._waiting("ClusterCreationFailed", str(exc)))

    def _build(self) -> None:
        sup = self.supervisor
        obj = sup.api.get(self.res, self.namespace, self.name)
        version = self.res.version
        cp_count, cp_class, workers, worker_class, storage_class, release = _topology(obj["spec"], version)
        problems = []
        if sup.api.get(sup.api.resource("tanzukubernetesreleases", RUN), "", release) is None:
            problems.append(f"TanzuKubernetesRelease {release!r} is not available")
        bound = {b["classRef"]["name"] for b in sup.api.list(sup.api.resource("virtualmachineclassbindings", VMOP),
                                                             self.namespace)}
        problems += [f"VirtualMachineClass {c!r} is not bound to namespace {self.namespace}"
                     for c in sorted({cp_class, worker_class}) if c not in bound]
        if sup.api.get(sup.api.resource("storageclasses", "storage.k8s.io"), "", storage_class) is None:
            problems.append(f"StorageClass {storage_class!r} is not available in namespace {self.namespace}")
        if problems:
            self._status("failed", self._waiting("ClusterCreationFailed", "; ".join(problems)))
            return
        if sup.lab is None:
            self._status("creating", self._waiting("WaitingForClusterInfrastructure",
                                                   "the stand-in plays no VMs without a lab"))
            return
        self._status("creating", self._waiting("WaitingForClusterInfrastructure", "creating the cluster's VMs",
                                               control_plane=(False, "WaitingForClusterInfrastructure", "")))
        cidr, gateway, _ = sup.workload()
        addresses = self.owner.addresses(cp_count + workers)
        vm_res = sup.api.resource("virtualmachines", VMOP)
        for i, address in enumerate(addresses):
            role = "controlplane" if i < cp_count else "node"
            vm_name = f"{self.name}-control-plane-{i}" if i < cp_count else f"{self.name}-workers-{i - cp_count}"
            vm = WorkloadVm(sup.lab, vm_name, address, cidr, gateway).start()
            self.vms.append(vm)
            sup.api.put(vm_res, {"metadata": {"name": vm_name, "namespace": self.namespace,
                                              "labels": {CLUSTER_LABEL: self.name, ROLE_LABEL: role}},
                                 "spec": {"className": cp_class if role == "controlplane" else worker_class,
                                          "imageName": release, "storageClass": storage_class,
                                          "powerState": "poweredOn"},
                                 "status": {"powerState": "poweredOn", "vmIp": address, "phase": "Created"}},
                        create=True)
        services = sup.api.resource("virtualmachineservices", VMOP)
        endpoint = f"{self.name}-control-plane-service"
        sup.api.put(services, {"metadata": {"name": endpoint, "namespace": self.namespace,
                                            "labels": {CLUSTER_LABEL: self.name}},
                               "spec": {"type": "LoadBalancer", "ports": [
                                   {"name": "apiserver", "protocol": "TCP", "port": 6443, "targetPort": 6443}],
                                   "selector": {CLUSTER_LABEL: self.name, ROLE_LABEL: "controlplane"}}}, create=True)
        vip = None
        while vip is None and not self._stop.is_set():
            held = sup.api.get(services, self.namespace, endpoint) or {}
            ingress = held.get("status", {}).get("loadBalancer", {}).get("ingress") or []
            vip = ingress[0].get("ip") if ingress else None
            if vip is None:
                self._status("creating", self._waiting(
                    "WaitingForClusterInfrastructure", "the control plane's endpoint has no address yet",
                    control_plane=(False, "WaitingForClusterInfrastructure", ""),
                    load_balancer=(False, "WaitingForLoadBalancerIP",
                                   f"VirtualMachineService LB does not yet have VIP assigned: "
                                   f"VirtualMachineService {self.namespace}/{endpoint} has no "
                                   f"status.loadBalancer.ingress")))
                self._stop.wait(0.2)
        if vip is None:
            return
        self._start_api(vip, obj["spec"], release)
        conditions = [condition(kind, True) for kind in ("Ready", "ControlPlaneReady", "LoadBalancerReady",
                                                         "NodePoolsReady", "AddonsReady")]
        self._status("running", conditions, apiEndpoints=[{"host": vip, "port": 6443}],
                     version=release.replace("---", "+"), totalWorkerReplicas=workers)

    def _start_api(self, vip: str, spec: dict, release: str) -> None:
        from ..appliance.dataplane_server import issue_server_cert, load_cert_chain, make_ca

        ca_pem, ca_key = make_ca(self.name, organization="Tanzu Kubernetes cluster (simulated)")
        cert_pem, key_pem = issue_server_cert(ca_pem, ca_key, "kube-apiserver", dns_names=[
            "kubernetes", "kubernetes.default", self.name], ip_addresses=[vip, self.vms[0].address])
        client_cert, client_key = _client_cert(ca_pem, ca_key, "kubernetes-admin", "system:masters")
        pods, services = _networks(spec)
        self.api = KubernetesApi(_guest_resources(), STAND_IN, version=release.split("---")[0] + "+vmware.1",
                                 authenticate=_client_certificate)
        self.api.admit = self._admit
        self.api.watchers.append(self._changed)
        self._pods = ipaddress.IPv4Network(pods)
        self._services = ipaddress.IPv4Network(services)
        self._pod_addresses = itertools.islice(self._pods.hosts(), 1, None)
        self._service_addresses = itertools.islice(self._services.hosts(), 1, None)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        load_cert_chain(context, cert_pem, key_pem)
        context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate, or a 401
        context.load_verify_locations(cadata=ca_pem)
        api = self.api

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self): serve(api, self, "GET")  # noqa: E704,N802
            def do_POST(self): serve(api, self, "POST")  # noqa: E704,N802
            def do_PUT(self): serve(api, self, "PUT")  # noqa: E704,N802
            def do_PATCH(self): serve(api, self, "PATCH")  # noqa: E704,N802
            def do_DELETE(self): serve(api, self, "DELETE")  # noqa: E704,N802

        cp_count = sum(1 for vm in self.vms if "-control-plane-" in vm.name)
        for vm in self.vms[:cp_count]:
            vm.serve(6443, Handler, context)
        nodes = self.api.resource("nodes")
        for vm in self.vms:
            role = "control-plane,master" if "-control-plane-" in vm.name else "<none>"
            self.api.put(nodes, {"metadata": {"name": vm.name, "labels": {
                "kubernetes.io/hostname": vm.name, **({"node-role.kubernetes.io/control-plane": ""}
                                                      if role != "<none>" else {})}},
                "spec": {"providerID": f"vsphere://{vm.name}"},
                "status": {"addresses": [{"type": "InternalIP", "address": vm.address},
                                         {"type": "Hostname", "address": vm.name}],
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status"}],
                           "nodeInfo": {"kubeletVersion": release.split("---")[0],
                                        "kubeProxyVersion": release.split("---")[0], "architecture": "amd64",
                                        "operatingSystem": "linux", "osImage": "VMware Photon OS/Linux (simulated)",
                                        "kernelVersion": "4.19.0", "containerRuntimeVersion": "containerd://1.5.7",
                                        "bootID": secrets.token_hex(16), "machineID": secrets.token_hex(16),
                                        "systemUUID": secrets.token_hex(16)}}}, create=True)
        self.api.put(self.api.resource("namespaces"), {"metadata": {"name": "default"}, "status": {"phase": "Active"}},
                     create=True)
        first = str(next(self._services.hosts()))  # the API's own Service takes the services' first address
        self.api.put(self.api.resource("services"), {
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver"}},
            "spec": {"type": "ClusterIP", "clusterIP": first, "clusterIPs": [first],
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
            "status": {"loadBalancer": {}}}, create=True)
        kubeconfig = _kubeconfig(self.name, vip, ca_pem, client_cert, client_key)
        secrets_res = self.supervisor.api.resource("secrets")
        self._answers_through(vip, ca_pem)
        self.supervisor.api.put(secrets_res, {
            "metadata": {"name": f"{self.name}-kubeconfig", "namespace": self.namespace,
                         "labels": {"cluster.x-k8s.io/cluster-name": self.name}},
            "type": "cluster.x-k8s.io/secret", "data": {"value": base64.b64encode(kubeconfig.encode()).decode()}},
            create=True)

    def _answers_through(self, vip: str, ca_pem: str, timeout: float = 30.0) -> None:
        """Until the API answers at the virtual IP (through HAProxy, once its checks find the server up): a
        control plane is ready only when its endpoint answers."""
        import socket
        import time

        from ..appliance.netns import run_in_netns

        context = ssl.create_default_context(cadata=ca_pem)

        def ask() -> bool:
            try:
                with socket.create_connection((vip, 6443), timeout=2) as raw:
                    with context.wrap_socket(raw, server_hostname=vip) as tls:
                        tls.sendall(b"GET /version HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
                        return tls.recv(16).startswith(b"HTTP/1.")
            except (OSError, ssl.SSLError):
                return False

        deadline = time.monotonic() + timeout
        while not self._stop.is_set() and time.monotonic() < deadline:
            if run_in_netns(self.supervisor.lab, ask):
                return
            self._stop.wait(0.2)

    # --- inside the cluster -----------------------------------------------------------------------

    def _admit(self, res: Resource, obj: dict) -> dict:
        if res.plural == "services" and res.group == CORE:
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec["clusterIP"] = str(next(self._service_addresses))
            spec["clusterIPs"] = [spec["clusterIP"]]
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
                if spec["type"] in ("NodePort", "LoadBalancer"):
                    port["nodePort"] = next(self._ports)
            obj["status"] = {"loadBalancer": {}}
        return obj

    def _changed(self, event: str, res: Resource, obj: dict) -> None:
        try:
            if res.plural == "deployments" and event == "ADDED":
                self._run_pods(obj)
            elif res.plural == "services" and res.group == CORE:
                self._service(event, obj)
        except Exception as exc:  # noqa: BLE001
            log.info("cluster %s: %s", self.name, exc)

    def _run_pods(self, deployment: dict) -> None:
        api = self.api
        pods = api.resource("pods")
        workers = [vm for vm in self.vms if "-workers-" in vm.name] or self.vms
        template = deployment["spec"].get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        replicas = int(deployment["spec"].get("replicas", 1))
        suffix = secrets.token_hex(5)
        for i in range(replicas):
            name = f"{deployment['metadata']['name']}-{suffix}-{secrets.token_hex(3)[:5]}"
            node = workers[i % len(workers)]
            api.put(pods, {"metadata": {"name": name, "namespace": deployment["metadata"]["namespace"],
                                        "labels": labels},
                           "spec": {**(template.get("spec") or {}), "nodeName": node.name},
                           "status": {"phase": "Running", "podIP": str(next(self._pod_addresses)),
                                      "hostIP": node.address, "startTime": now(),
                                      "conditions": [{"type": "Ready", "status": "True"}]}}, create=True)
        deployment["status"] = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                                "updatedReplicas": replicas, "observedGeneration": 1}
        api.put(api.resource("deployments", "apps"), deployment)

    def _service(self, event: str, service: dict) -> None:
        sup, spec = self.supervisor, service.get("spec") or {}
        meta = service["metadata"]
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            return
        name = vm_service_name(self.name, meta["name"], meta["namespace"])
        vm_services = sup.api.resource("virtualmachineservices", VMOP)
        ports = [(int(p["port"]), int(p["nodePort"])) for p in spec.get("ports") or [] if p.get("nodePort")]
        if event == "DELETED":
            for _, node_port in ports:
                self._node_ports.pop(node_port, None)
                for vm in self.vms:
                    vm.close_port(node_port)
            if sup.api.get(vm_services, self.namespace, name) is not None:
                sup.api.remove(vm_services, self.namespace, name)
            return
        if event == "ADDED":
            workers = [vm for vm in self.vms if "-workers-" in vm.name]
            for _, node_port in ports:
                self._node_ports[node_port] = (meta["namespace"], meta["name"])
                for vm in workers:
                    vm.serve(node_port, self._netexec(meta["namespace"], spec.get("selector") or {}))
        if spec["type"] != "LoadBalancer":
            return
        if event == "ADDED":
            sup.api.put(vm_services, {
                "metadata": {"name": name, "namespace": self.namespace, "labels": {
                    "run.tanzu.vmware.com/cluster.name": self.name, "run.tanzu.vmware.com/service.name": meta["name"],
                    "run.tanzu.vmware.com/service.namespace": meta["namespace"]}},
                "spec": {"type": "LoadBalancer", "ports": [
                    {"name": f"port-{port}", "protocol": "TCP", "port": port, "targetPort": node_port}
                    for port, node_port in ports], "selector": {CLUSTER_LABEL: self.name, ROLE_LABEL: "node"}}},
                create=True)
            threading.Thread(target=self._copy_address, args=(meta["namespace"], meta["name"], name),
                             name=f"cpi-{meta['name']}", daemon=True).start()

    def _copy_address(self, namespace: str, service: str, vm_service: str) -> None:
        """The cloud provider's part: the VirtualMachineService's address copied to the Service's status."""
        sup, api = self.supervisor, self.api
        services = api.resource("services")
        vm_services = sup.api.resource("virtualmachineservices", VMOP)
        while not self._stop.is_set():
            held = sup.api.get(vm_services, self.namespace, vm_service)
            current = api.get(services, namespace, service)
            if held is None or current is None:
                return
            ingress = held.get("status", {}).get("loadBalancer", {}).get("ingress") or []
            if ingress:
                current["status"] = {"loadBalancer": {"ingress": [{"ip": i["ip"]} for i in ingress]}}
                api.put(services, current)
                return
            self._stop.wait(0.2)

    def _netexec(self, namespace: str, selector: dict):
        """agnhost netexec's HTTP answers, as the Service's pods give them (each in turn)."""
        api = self.api
        turn = itertools.count()

        class Netexec(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                pods = [p for p in api.list(api.resource("pods"), namespace)
                        if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
                if not pods:
                    self.send_error(503, "no pod serves this Service")
                    return
                pod = pods[next(turn) % len(pods)]["metadata"]["name"]
                data = (pod if self.path.split("?")[0] in ("/hostname", "/") else "NOW: " + now()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("X-Simulated-By", STAND_IN)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        return Netexec

    def stop(self) -> None:
        self._stop.set()
        for vm in self.vms:
            vm.stop()


def _guest_resources() -> list[Resource]:
    def ports(o: dict) -> str:
        return ",".join(f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
                        for p in o["spec"].get("ports") or [])

    def external(o: dict) -> str:
        ingress = o.get("status", {}).get("loadBalancer", {}).get("ingress") or []
        if ingress:
            return ",".join(i.get("ip", "") for i in ingress)
        return "<pending>" if o["spec"].get("type") == "LoadBalancer" else "<none>"

    return [
        Resource(CORE, "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
                 columns=(("Status", "string", lambda o: o.get("status", {}).get("phase", "")),)),
        Resource(CORE, "v1", "Node", "nodes", namespaced=False, short_names=("no",),
                 columns=(("Status", "string", lambda o: "Ready"),
                          ("Version", "string", lambda o: o["status"]["nodeInfo"]["kubeletVersion"]))),
        Resource(CORE, "v1", "Pod", "pods", short_names=("po",),
                 columns=(("Status", "string", lambda o: o.get("status", {}).get("phase", "")),
                          ("IP", "string", lambda o: o.get("status", {}).get("podIP", "")))),
        Resource(CORE, "v1", "Service", "services", short_names=("svc",),
                 columns=(("Type", "string", lambda o: o["spec"].get("type", "")),
                          ("Cluster-IP", "string", lambda o: o["spec"].get("clusterIP", "")),
                          ("External-IP", "string", external), ("Port(s)", "string", ports))),
        Resource("apps", "v1", "Deployment", "deployments", short_names=("deploy",),
                 columns=(("Ready", "string", lambda o: f"{o.get('status', {}).get('readyReplicas', 0)}/"
                                                        f"{o['spec'].get('replicas', 1)}"),)),
    ]


def _client_certificate(handler) -> Optional[str]:
    """The user a verified client certificate names (its CN), else None."""
    try:
        cert = handler.connection.getpeercert()
    except (AttributeError, ValueError):
        return None
    for field in (cert or {}).get("subject", ()):
        for key, value in field:
            if key == "commonName":
                return value
    return None


def _client_cert(ca_pem: str, ca_key_pem: str, user: str, group: str) -> tuple[str, str]:
    """A client certificate (CN the user, O the group) signed by the cluster's CA, and its key (PEM)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    when = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, group),
                                     x509.NameAttribute(NameOID.COMMON_NAME, user)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(when - datetime.timedelta(minutes=5)).not_valid_after(when + datetime.timedelta(days=365))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode())


def _kubeconfig(cluster: str, vip: str, ca_pem: str, cert_pem: str, key_pem: str) -> str:
    import yaml

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    user = f"{cluster}-admin"
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": f"https://{vip}:6443",
                                                   "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": f"{user}@{cluster}", "context": {"cluster": cluster, "user": user}}],
        "current-context": f"{user}@{cluster}"}, sort_keys=False)
