"""The Supervisor's side of the load balancer, played: its control plane's three API servers on the
workload network, and the load-balancer controller that programs the appliance for them.

:class:`SupervisorControlPlane` is three small HTTPS servers (stand-ins for the control-plane VMs'
API servers, each answering with its own name, e.g. ``supervisor-cp-1``) on ports 6443 and 443 of
three addresses of the primary workload range, in a network namespace of their own attached to
the lab's workload bridge (default route via the workload gateway). Their certificates come from
the CA given (the vCenter simulator's own, when its Workload Management stand-in plays the
Supervisor: a real Supervisor's API certificates are issued by vCenter's VMCA) or a CA of their
own, and name the virtual IP, as the Supervisor's API server certificate names its load
balancer's address, so a client verifies the answer through the virtual IP.

:func:`program_load_balancer` does what a load-balancer controller does through the appliance's
Data Plane API (2.1.0, the version the appliance ships), TLS verified against the appliance's CA:
it reads the configuration's version (from a list's ``_version``: 2.1.0 has no
``/configuration/version``), opens a transaction at it, puts in what a real Supervisor's controller
puts there: a TCP frontend on the virtual IP with binds on 6443 and 443, and per port a ``use_backend
... if { dst_port <port> }`` rule and a round-robin backend holding the servers on that port, each
health-checked there; and commits with ``force_reload`` so the answer carries HAProxy's verdict.
:func:`reconcile_load_balancer` is one pass of a controller's loop: it reads what the appliance
holds and what its HAProxy runs, and programs it only where either differs from what is wanted.

Needs root (namespaces), and a lab with a workload bridge: the appliance simulator's.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Sequence

import requests

from tkgs_lib.https import basic_auth
from tkgs_lib.errors import ApplianceError, SimulatorUnavailable
from .appliance.dataplane_server import issue_server_cert, load_cert_chain, make_ca
from .appliance.netns import (add_netns, announce, del_netns, ip, namespaces, need_root, new_name, run_in_netns,
                             sweep)
from tkgs_lib.https import ContextAdapter

__all__ = ["SupervisorControlPlane", "ControlPlaneServer", "program_load_balancer", "reconcile_load_balancer",
           "remove_load_balancer", "backend_names", "CONTROL_PLANE_PORTS", "STAND_IN", "LOAD_BALANCER_NAME"]

CONTROL_PLANE_PORTS = (6443, 443)  # the Kubernetes API, and the Supervisor's 443 (login, vSphere plug-in)
STAND_IN = "tkgs-runbook Supervisor control plane (stand-in)"
LOAD_BALANCER_NAME = "supervisor-control-plane"  # the frontend's name, and its backends' first part


@dataclass(frozen=True)
class ControlPlaneServer:
    name: str
    address: str
    port: Optional[int] = None  # None: the port the client asked for (a control plane's); else this one (a NodePort)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:  # no getfqdn: the namespace has no resolver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def _handler(name: str, api=None):
    """Each server answers with its name; given ``api`` (the Supervisor's Kubernetes API and ``/wcp``, played by
    :mod:`tkgs_simulators.kubernetes`), the paths it serves are its."""
    class Answer(BaseHTTPRequestHandler):
        server_version = "supervisor-stand-in"

        def log_message(self, *args) -> None:
            pass

        def _api(self, method: str) -> bool:
            if api is not None and api.serves(self.path):
                api.serve(self, method)
                return True
            return False

        def do_POST(self) -> None:  # noqa: N802
            if not self._api("POST"):
                self.send_error(405)

        def do_PUT(self) -> None:  # noqa: N802
            if not self._api("PUT"):
                self.send_error(405)

        def do_PATCH(self) -> None:  # noqa: N802
            if not self._api("PATCH"):
                self.send_error(405)

        def do_DELETE(self) -> None:  # noqa: N802
            if not self._api("DELETE"):
                self.send_error(405)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self._api("GET"):
                return
            data = json.dumps({"name": name, "address": self.server.server_name,
                               "port": self.server.server_port}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Simulated-By", STAND_IN)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Answer


class SupervisorControlPlane:
    """Three control-plane API servers on ``addresses`` (of ``workload_cidr``, the primary workload
    network) in a namespace attached to ``bridge`` in ``lab``, reached through ``gateway``.
    ``vip``: the load balancer's address their certificates also name."""

    def __init__(self, lab: str, workload_cidr: str, gateway: str, addresses: Sequence[str], *,
                 vip: Optional[str] = None, bridge: str = "br-workload",
                 ports: Sequence[int] = CONTROL_PLANE_PORTS, ca_pem: str = "", ca_key_pem: str = "", api=None) -> None:
        """``ca_pem`` and ``ca_key_pem``: the CA that issues the servers' certificates (both or
        neither; neither: a CA of their own, made at :meth:`start`); ``api``: what serves the Supervisor's
        Kubernetes API and /wcp on them (None: each answers with its name alone)."""
        if bool(ca_pem) != bool(ca_key_pem):
            raise SimulatorUnavailable("the control plane's CA needs both its certificate and its key, or neither.")
        network = ipaddress.ip_network(workload_cidr)
        outside = [a for a in addresses if ipaddress.ip_address(a) not in network]
        if outside:
            raise SimulatorUnavailable(f"the control plane's addresses must be in the workload network {network}; "
                                       f"{', '.join(outside)} is not.")
        self.lab, self.network, self.gateway, self.bridge, self.vip = lab, network, gateway, bridge, vip
        self.ports = tuple(ports)
        self.servers = [ControlPlaneServer(f"supervisor-cp-{i}", a) for i, a in enumerate(addresses, start=1)]
        self.namespace = new_name("sup")
        self._lab_end = "v-sup" + self.namespace.rsplit("-", 1)[-1]  # the veth's end on the bridge
        self.ca_pem, self._ca_key, self._own_ca = ca_pem, ca_key_pem, not ca_pem
        self.api = api
        self._listening: dict[str, dict[int, _Server]] = {}  # server name → port → its HTTPS server
        self._started = False

    def __repr__(self) -> str:
        return f"<SupervisorControlPlane {', '.join(s.address for s in self.servers)} in {self.namespace}>"

    def __enter__(self) -> "SupervisorControlPlane":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "SupervisorControlPlane":
        need_root()
        if self.lab not in namespaces():
            raise SimulatorUnavailable(f"the lab namespace {self.lab} does not exist: start the appliance simulator "
                                       f"first, the control plane joins its workload bridge.")
        if ip("link", "show", self.bridge, netns=self.lab, check=False).returncode != 0:
            raise SimulatorUnavailable(f"the lab {self.lab} has no bridge {self.bridge}: the control plane lives on "
                                       f"the workload network, so the appliance must have a workload interface.")
        sweep()
        self._started = True
        try:
            add_netns(self.namespace)
            ip("link", "set", "lo", "up", netns=self.namespace)
            ip("link", "add", "workload", "type", "veth", "peer", "name", self._lab_end, "netns", self.lab,
               netns=self.namespace)
            ip("link", "set", self._lab_end, "master", self.bridge, "up", netns=self.lab)
            for server in self.servers:
                ip("addr", "add", f"{server.address}/{self.network.prefixlen}", "dev", "workload", netns=self.namespace)
            ip("link", "set", "workload", "up", netns=self.namespace)
            ip("route", "add", "default", "via", self.gateway, "dev", "workload", netns=self.namespace)
            self._announce()
            if self._own_ca:
                self.ca_pem, self._ca_key = make_ca("supervisor", organization="Supervisor control plane (simulated)")
            for server in self.servers:
                self.start_server(server.name)
        except BaseException:
            self.stop()
            raise
        return self

    def _announce(self) -> None:
        """Gratuitous ARP for each address, as a booting VM announces itself (RFC 5227). A control
        plane made again (disable, then enable) has new MACs for the same addresses: without this the
        appliance's neighbour entries point at the old ones for half a minute, and HAProxy's health
        checks time out meanwhile (a real Supervisor takes minutes to deploy, so they have aged)."""
        run_in_netns(self.namespace, lambda: announce("workload", [server.address for server in self.servers]))

    def _server(self, name: str) -> ControlPlaneServer:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(f"no control-plane server named {name}: {', '.join(s.name for s in self.servers)}")

    def start_server(self, name: str, ports: Optional[Sequence[int]] = None) -> None:
        """Start (again) the server ``name`` on each of ``ports`` (all when None): as its VM, or one of its
        services, coming back."""
        server = self._server(name)
        listening = self._listening.setdefault(name, {})
        wanted = [p for p in (self.ports if ports is None else ports) if p not in listening]
        if not wanted:
            return
        cert_pem, key_pem = issue_server_cert(
            self.ca_pem, self._ca_key, server.name, dns_names=[server.name],
            ip_addresses=[server.address, *([self.vip] if self.vip else [])])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        load_cert_chain(context, cert_pem, key_pem)
        for port in wanted:
            # the listening socket is made in the namespace; served from any thread after
            http = run_in_netns(self.namespace,
                                lambda port=port: _Server((server.address, port), _handler(server.name, self.api)))
            http.socket = context.wrap_socket(http.socket, server_side=True)
            # a short poll: stop_server waits for each loop to see its shutdown
            threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{server.name}:{port}",
                             daemon=True).start()
            listening[port] = http

    def stop_server(self, name: str, ports: Optional[Sequence[int]] = None) -> None:
        """Stop the server ``name`` on ``ports`` (all when None; they then refuse connections): as its API
        server, or one of its services, going down."""
        self._server(name)
        listening = self._listening.get(name, {})
        for port in list(listening) if ports is None else [p for p in ports if p in listening]:
            http = listening.pop(port)
            http.shutdown()
            http.server_close()

    def who_answers(self, address: str, port: int = CONTROL_PLANE_PORTS[0], *, name: Optional[str] = None,
                    timeout: float = 5.0) -> str:
        """From the lab (the user's side): an HTTPS request to ``address:port``, the certificate
        verified against the control plane's CA and the name ``name`` (``address`` by default); the
        name of the server that answered."""
        context = ssl.create_default_context(cadata=self.ca_pem)

        def ask() -> str:
            with socket.create_connection((address, port), timeout=timeout) as raw:
                with context.wrap_socket(raw, server_hostname=name or address) as tls:
                    tls.sendall(f"GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode())
                    answer = b""
                    while chunk := tls.recv(65536):
                        answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            if not status.startswith("HTTP/1.") or " 200 " not in status:
                raise ApplianceError(f"{address}:{port} answered, but not with the control plane's 200: {status!r}.")
            return json.loads(body)["name"]

        return run_in_netns(self.lab, ask)

    def stop(self) -> None:
        for name in list(self._listening):
            self.stop_server(name)
        if self._started:
            ip("link", "del", self._lab_end, netns=self.lab, check=False)  # gone with the namespace too; sooner
            if self.namespace in namespaces():
                del_netns(self.namespace)
            self._started = False


# --- the load-balancer controller ----------------------------------------------------------------

def _refusal(response: requests.Response) -> str:
    """What the Data Plane API says when it refuses: its error model's ``message``, else its text, on one line."""
    try:
        said = response.json()["message"]
    except (ValueError, KeyError, TypeError):
        said = response.text[:200]
    return " ".join(str(said).split()) or response.reason or ""


class _DataPlane:
    """Calls to the appliance's Data Plane API, TLS verified against its CA alone (names checked, nothing
    from the environment); each refusal one sentence."""

    def __init__(self, url: str, user: str, password: str, ca_pem: str, timeout: float) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        try:
            context = ssl.create_default_context(cadata=ca_pem)
        except ssl.SSLError as exc:
            raise ApplianceError(f"the appliance's CA is not a PEM CA certificate ({exc.reason or exc}).") from None
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("https://", ContextAdapter(context))
        self.session.headers.update(basic_auth(user, password))

    def __enter__(self) -> "_DataPlane":
        return self

    def __exit__(self, *exc) -> None:
        self.session.close()

    def call(self, method: str, path: str, what: str, expected: tuple[int, ...], *, hint: str = "",
             **kwargs) -> requests.Response:
        where = self.url
        try:
            response = self.session.request(method, f"{where}/v2/services/haproxy{path}", timeout=self.timeout,
                                            allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError:
            raise ApplianceError(f"the Data Plane API at {where} presents a certificate the appliance's CA does not "
                                 f"vouch for (or that does not name that address), so nothing was sent to {what}: "
                                 f"check the CA and the management address.") from None
        except requests.exceptions.Timeout:
            raise ApplianceError(f"the Data Plane API at {where} did not answer within {self.timeout:.0f} s when "
                                 f"asked to {what}.") from None
        except requests.exceptions.ConnectionError:
            raise ApplianceError(f"cannot connect to the Data Plane API at {where} to {what}: is the appliance up, "
                                 f"and is that its management address and Data Plane API port?") from None
        if response.status_code not in expected:
            said = _refusal(response)
            end = hint if hint and "cannot bind socket" in said else "."
            raise ApplianceError(f"the Data Plane API at {where} refused to {what} (HTTP {response.status_code}): "
                                 f"{said.rstrip('.')}{end}")
        return response

    def start_transaction(self) -> tuple[str, set[str], set[str]]:
        """A transaction at the current version (read from a list: 2.1.0 has no /configuration/version),
        and the frontends and backends there are."""
        listed = self.call("GET", "/configuration/frontends", "list the frontends", (200,)).json()
        backends = self.call("GET", "/configuration/backends", "list the backends", (200,)).json()["data"]
        transaction = self.call("POST", "/transactions", "start a transaction", (201,),
                                params={"version": listed["_version"]}).json()["id"]
        return transaction, {f["name"] for f in listed["data"]}, {b["name"] for b in backends}

    def commit(self, transaction: str, what: str, hint: str = "") -> int:
        """Commit with a reload now (the answer then carries HAProxy's verdict); the new version."""
        committed = self.call("PUT", f"/transactions/{transaction}", what, (200,), hint=hint,
                              params={"force_reload": "true"}).json()
        return int(committed["_version"]) + 1


# What a real Supervisor's controller programs (a lab's haproxy.cfg, ritsz/ritsz.github.io
# _posts/2021-7-24-Notes-on-HAProxy.md): one frontend with a bind on the virtual IP per port
# (`bind 192.168.0.1:443 name ...:nginx`, `bind 192.168.0.1:6443 name ...:kube-apiserver`), no default
# backend but `use_backend <...>-kube-apiserver if { dst_port 6443 }` and `use_backend <...>-nginx if
# { dst_port 443 }`, each backend round robin over the control-plane VMs' workload addresses on that port
# (`server ... 192.168.128.0:6443 check weight 100 verify none`).
PORT_ROLES = {6443: "kube-apiserver", 443: "nginx"}


def backend_names(name: str, ports: Sequence[int] = CONTROL_PLANE_PORTS) -> dict[int, str]:
    """Each port's backend: ``<name>-kube-apiserver`` for 6443, ``<name>-nginx`` for 443."""
    return {port: f"{name}-{PORT_ROLES.get(port, str(port))}" for port in ports}


def _wanted_rules(name: str, ports: Sequence[int]) -> list[dict]:
    return [{"index": i, "name": backend, "cond": "if", "cond_test": f"{{ dst_port {port} }}"}
            for i, (port, backend) in enumerate(backend_names(name, ports).items())]


def program_load_balancer(dataplane_url: str, user: str, password: str, ca_pem: str, vip: str,
                          servers: Sequence[ControlPlaneServer], *, name: str = LOAD_BALANCER_NAME,
                          ports: Sequence[int] = CONTROL_PLANE_PORTS, check_interval_ms: Optional[int] = None,
                          timeout: float = 30.0, explain: bool = True) -> int:
    """Program the appliance at ``dataplane_url`` (``https://<management address>:<port>``) for the
    control plane as a real Supervisor's controller does: frontend ``name`` on ``vip`` (a bind per
    port), a backend per port (:func:`backend_names`) with ``servers`` on that port (health-checked
    every ``check_interval_ms``, HAProxy's 2 s by default), and a ``use_backend`` rule per port,
    replacing what an earlier call made; one transaction, committed with a reload. Returns the
    configuration's new version; ApplianceError, one sentence, when the API refuses (in HAProxy's own
    words when HAProxy does; ``explain``: with a hint at anyip-routes.cfg when HAProxy cannot bind).
    Call it where the management address is reachable: with the simulator, in its lab
    (``sim.in_lab(lambda: program_load_balancer(...))``, or from a process running there)."""
    backends = backend_names(name, ports)
    with _DataPlane(dataplane_url, user, password, ca_pem, timeout) as api:
        transaction, frontends, present = api.start_transaction()
        within = {"transaction_id": transaction}
        try:
            if name in frontends:  # its binds and rules go with it
                api.call("DELETE", f"/configuration/frontends/{name}", f"remove the earlier frontend {name}", (202,),
                         params=within)
            for backend in [*backends.values(), name]:  # `name`: the one backend of an earlier layout
                if backend in present:
                    api.call("DELETE", f"/configuration/backends/{backend}", f"remove the earlier backend {backend}",
                             (202,), params=within)
            for port, backend in backends.items():
                api.call("POST", "/configuration/backends", f"add the backend {backend}", (202,), params=within,
                         json={"name": backend, "mode": "tcp", "balance": {"algorithm": "roundrobin"}})
                for server in servers:
                    model = {"name": server.name, "address": server.address, "port": server.port or port, "check": "enabled"}
                    if check_interval_ms:
                        model["inter"] = check_interval_ms
                    api.call("POST", "/configuration/servers", f"add the server {server.name} to {backend}", (202,),
                             params={**within, "backend": backend}, json=model)
            api.call("POST", "/configuration/frontends", f"add the frontend {name}", (202,), params=within,
                     json={"name": name, "mode": "tcp"})
            for port in ports:
                api.call("POST", "/configuration/binds", f"bind {vip}:{port}", (202,),
                         params={**within, "frontend": name}, json={"name": f"{name}-{port}", "address": vip,
                                                                    "port": port})
            for rule in _wanted_rules(name, ports):
                api.call("POST", "/configuration/backend_switching_rules", f"send {rule['cond_test']} to "
                         f"{rule['name']}", (202,), params={**within, "frontend": name}, json=rule)
        except ApplianceError:
            api.call("DELETE", f"/transactions/{transaction}", "drop the unfinished transaction", (204,))
            raise
        return api.commit(transaction, f"commit the load balancer for {vip}",
                          hint=f"; is {vip} inside a range of the appliance's /etc/vmware/anyip-routes.cfg?"
                          if explain else "")


def reconcile_load_balancer(dataplane_url: str, user: str, password: str, ca_pem: str, vip: str,
                            servers: Sequence[ControlPlaneServer], *, name: str = LOAD_BALANCER_NAME,
                            ports: Sequence[int] = CONTROL_PLANE_PORTS, check_interval_ms: Optional[int] = None,
                            timeout: float = 30.0, explain: bool = True) -> bool:
    """One pass of a load-balancer controller's loop: read the appliance's configuration (frontend
    ``name`` with a bind on ``vip`` per port and a rule per port, each port's backend holding ``servers``
    on that port) and whether its HAProxy runs that frontend (native stats: ``OPEN``); when either
    differs, program it (:func:`program_load_balancer`). True when it programmed. A failed reload leaves
    the new file with HAProxy serving the old one, so the file alone never says the virtual IP is bound:
    the runtime is read too, and a frontend HAProxy does not run is programmed again (a fresh reload)."""
    with _DataPlane(dataplane_url, user, password, ca_pem, timeout) as api:
        in_step = _in_step(api, vip, servers, name, ports)
    if in_step:
        return False
    program_load_balancer(dataplane_url, user, password, ca_pem, vip, servers, name=name, ports=ports,
                          check_interval_ms=check_interval_ms, timeout=timeout, explain=explain)
    return True


def _in_step(api: _DataPlane, vip: str, servers: Sequence[ControlPlaneServer], name: str, ports: Sequence[int]) -> bool:
    """Whether the appliance holds and runs what :func:`program_load_balancer` makes, read step by step."""
    def data(path: str, what: str, **params) -> list:
        return api.call("GET", path, what, (200,), params=params or None).json()["data"]

    if not any(f.get("name") == name for f in data("/configuration/frontends", "list the frontends")):
        return False
    binds = data("/configuration/binds", f"list the binds of {name}", frontend=name)
    if {(b.get("address"), b.get("port")) for b in binds} != {(vip, port) for port in ports}:
        return False
    rules = data("/configuration/backend_switching_rules", f"list the backend switching rules of {name}",
                 frontend=name)
    if [{k: r.get(k) for k in ("index", "name", "cond", "cond_test")} for r in rules] != _wanted_rules(name, ports):
        return False
    held = {b.get("name") for b in data("/configuration/backends", "list the backends")}
    for port, backend in backend_names(name, ports).items():
        if backend not in held:
            return False
        found = data("/configuration/servers", f"list the servers of {backend}", backend=backend)
        if {(s.get("name"), s.get("address"), s.get("port")) for s in found} != {
                (s.name, s.address, s.port or port) for s in servers}:
            return False
    stats = api.call("GET", "/stats/native", f"read HAProxy's statistics of {name}", (200,),
                     params={"type": "frontend", "name": name}).json()
    rows = [row for collection in stats for row in collection.get("stats") or ()]
    return any(row.get("stats", {}).get("status") == "OPEN" for row in rows)


def remove_load_balancer(dataplane_url: str, user: str, password: str, ca_pem: str, *,
                         name: str = LOAD_BALANCER_NAME, ports: Sequence[int] = CONTROL_PLANE_PORTS,
                         timeout: float = 30.0) -> int:
    """Remove frontend ``name`` and its backends (what :func:`program_load_balancer` made), as a
    controller does when the service goes; the configuration's new version."""
    with _DataPlane(dataplane_url, user, password, ca_pem, timeout) as api:
        transaction, frontends, backends = api.start_transaction()
        within = {"transaction_id": transaction}
        if name in frontends:
            api.call("DELETE", f"/configuration/frontends/{name}", f"remove the frontend {name}", (202,), params=within)
        for backend in [*backend_names(name, ports).values(), name]:
            if backend in backends:
                api.call("DELETE", f"/configuration/backends/{backend}", f"remove the backend {backend}", (202,),
                         params=within)
        return api.commit(transaction, f"commit the removal of {name}")
