"""The virtual machines of a Tanzu Kubernetes cluster, played: each a network namespace on the lab's workload
bridge (a veth, its address on the workload network, a default route via the workload gateway, a
gratuitous ARP as a booting VM sends), serving HTTP or HTTPS from threads of this process (the listening
socket made in the namespace). Needs root, and a lab with a workload bridge (the appliance simulator's).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import socketserver
import ssl
import threading
from http.server import ThreadingHTTPServer
from typing import Optional

from tkgs_lib.errors import SimulatorUnavailable
from ..appliance.netns import add_netns, del_netns, ip, namespaces, need_root, new_name, run_in_netns, sweep

__all__ = ["WorkloadVm", "Listening"]


class Listening(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:  # no getfqdn: the namespace has no resolver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class WorkloadVm:
    """A VM named ``name`` at ``address`` (of ``workload_cidr``) on ``bridge`` in ``lab``, reached through
    ``gateway``: :meth:`start`, :meth:`serve` on its ports, :meth:`stop`."""

    def __init__(self, lab: str, name: str, address: str, workload_cidr: str, gateway: str, *,
                 bridge: str = "br-workload") -> None:
        network = ipaddress.ip_network(workload_cidr)
        if ipaddress.ip_address(address) not in network:
            raise SimulatorUnavailable(f"VM {name}'s address {address} is not in the workload network {network}.")
        self.lab, self.name, self.address, self.network, self.gateway, self.bridge = (
            lab, name, address, network, gateway, bridge)
        self.namespace = new_name("vm")
        self._lab_end = "v-vm" + self.namespace.rsplit("-", 1)[-1]
        self._servers: dict[int, Listening] = {}
        self._lock = threading.Lock()
        self._started = False

    def __repr__(self) -> str:
        return f"<WorkloadVm {self.name} {self.address}>"

    def start(self) -> "WorkloadVm":
        need_root()
        if self.lab not in namespaces():
            raise SimulatorUnavailable(f"the lab namespace {self.lab} does not exist.")
        sweep()
        self._started = True
        try:
            add_netns(self.namespace)
            ip("link", "set", "lo", "up", netns=self.namespace)
            ip("link", "add", "eth0", "type", "veth", "peer", "name", self._lab_end, "netns", self.lab,
               netns=self.namespace)
            ip("link", "set", self._lab_end, "master", self.bridge, "up", netns=self.lab)
            ip("addr", "add", f"{self.address}/{self.network.prefixlen}", "dev", "eth0", netns=self.namespace)
            ip("link", "set", "eth0", "up", netns=self.namespace)
            ip("route", "add", "default", "via", self.gateway, "dev", "eth0", netns=self.namespace)
            self._announce()
        except BaseException:
            self.stop()
            raise
        return self

    def _announce(self) -> None:
        """Gratuitous ARP (RFC 5227): the appliance's neighbour entry for a reused address is this VM's."""
        mac = bytes.fromhex(json.loads(ip("-j", "link", "show", "dev", "eth0", netns=self.namespace).stdout)[0][
            "address"].replace(":", ""))
        packed = ipaddress.IPv4Address(self.address).packed

        def send() -> None:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
                raw.bind(("eth0", 0))
                arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac + packed + b"\x00" * 6 + packed
                raw.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
        run_in_netns(self.namespace, send)

    def serve(self, port: int, handler, context: Optional[ssl.SSLContext] = None) -> Listening:
        """``handler`` (an http.server handler class) on ``port``, over TLS with ``context`` when given."""
        with self._lock:
            if port in self._servers:
                raise SimulatorUnavailable(f"VM {self.name} already serves port {port}.")
            http = run_in_netns(self.namespace, lambda: Listening((self.address, port), handler))
            if context is not None:
                http.socket = context.wrap_socket(http.socket, server_side=True)
            threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                             name=f"{self.name}:{port}", daemon=True).start()
            self._servers[port] = http
            return http

    def close_port(self, port: int) -> None:
        with self._lock:
            http = self._servers.pop(port, None)
        if http is not None:
            http.shutdown()
            http.server_close()

    @property
    def ports(self) -> list[int]:
        with self._lock:
            return sorted(self._servers)

    def stop(self) -> None:
        for port in self.ports:
            self.close_port(port)
        if self._started:
            ip("link", "del", self._lab_end, netns=self.lab, check=False)
            if self.namespace in namespaces():
                del_netns(self.namespace)
            self._started = False
