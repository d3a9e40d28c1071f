"""``ovf-to-cloud-init.sh``'s first boot, as each release has it: the files it writes from the OVF properties
that the appliance's units and its Data Plane API read.

Read in haproxytech/vmware-haproxy at each tag,
``ansible/roles/cloudinit/files/var/lib/vmware/ovf-to-cloud-init.sh`` (blobs 3a759f3 at v0.1.7, 47bdbcf
at v0.1.8, d97c478 at v0.1.9 and v0.1.10, 37cd186 at v0.2.0), never copied: one class per version of the
file, each a subclass of the one before that overrides what ``git diff`` between the two tags changes,
methods named after the script's functions. Played: ``writeCAfiles``, ``writeAnyipConfig``,
``writeRouteTableConfig`` (through ``writeNetPostConfig``) and v0.2.0's ``writeWorkloadNetworks``, in the
order of the script's first-boot branch; they append to the files the image ships (:mod:`.shipped`).
Not played: the cloud-init user and metadata (the simulated guest sets the addresses, root's password
and sshd itself), ``disableDefaultRoute`` (DHCP only: the simulated appliance has static addresses).
"""

from __future__ import annotations

from typing import Mapping, Optional

from .shell import ScriptExit, bash_echo
from .shipped import ANYIP_ROUTES_CFG, ROUTE_TABLES_CFG, SHIPPED

__all__ = ["OvfToCloudInitV0_1_7", "OvfToCloudInitV0_1_8", "OvfToCloudInitV0_1_9", "OvfToCloudInitV0_2_0",
           "CA_CRT", "CA_KEY", "WORKLOAD_NETWORKS_CFG", "format_certificate"]

CA_CRT, CA_KEY = "/etc/haproxy/ca.crt", "/etc/haproxy/ca.key"  # ca_crt_path, ca_key_path
WORKLOAD_NETWORKS_CFG = "/etc/vmware/workload-networks.cfg"  # v0.2.0


def format_certificate(text: str) -> str:
    """``formatCertificate``: sed turns every space into a line break, but those after ``BEGIN``,
    ``PRIVATE`` and ``END`` (so "-----BEGIN RSA PRIVATE KEY-----" breaks after "RSA")."""
    for word in ("BEGIN", "PRIVATE", "END"):
        text = text.replace(f"{word} ", f"{word}_")
    text = text.replace(" ", "\n")
    for word in ("BEGIN", "PRIVATE", "END"):
        text = text.replace(f"{word}_", f"{word} ")
    return text


class OvfToCloudInitV0_1_7:
    """v0.1.7: one route-tables.cfg line per network with a gateway; ``getMacForNetwork`` succeeds
    without the NIC (``return 0``), so a frontend with a gateway and an address gets its line then too."""

    def __init__(self, ovf: Mapping[str, str], nics: Mapping[str, str]) -> None:
        """``ovf``: the property values as vCenter hands them over; ``nics``: name → MAC, as
        ``/sys/class/net/<name>/address`` holds it."""
        self.ovf, self.nics = ovf, nics
        self.files: dict[str, str] = dict(SHIPPED)  # path → text, from what the image ships
        self.modes: dict[str, int] = {}

    def get_ovf(self, key: str) -> str:
        """``$(ovf-rpctool get.ovf KEY)``: the property's value ("" when not sent), its trailing line breaks dropped."""
        return (self.ovf.get(key) or "").rstrip("\n")

    def append(self, path: str, text: str) -> None:
        self.files[path] = self.files.get(path, "") + text

    def get_mac_for_network(self, name: str) -> Optional[str]:
        """``getMacForNetwork``: the NIC's MAC; None for ``return 1``."""
        return self.nics.get(name, "")  # v0.1.7: `return 0` when there is no such NIC

    def write_cert_file(self, value: str, path: str, mode: int) -> None:
        """``writeCertFile``: ``echo "$1" > "$2"``, ``formatCertificate "$2"``, ``chmod "$3" "$2"``."""
        self.files[path] = format_certificate(bash_echo(value))
        self.modes[path] = mode

    def get_create_default_ca(self) -> bool:
        """``getCreateDefaultCA``: "false" only when both properties hold a value (not "" nor "null")."""
        values = (self.get_ovf("appliance.ca_cert"), self.get_ovf("appliance.ca_cert_key"))
        return not all(v not in ("", "null") for v in values)

    def write_ca_files(self) -> None:
        # cloud-init makes a CA when this is true (userdata.txt's new-ca.sh): the guest does that part
        if not self.get_create_default_ca():
            self.write_cert_file(self.get_ovf("appliance.ca_cert"), CA_CRT, 0o644)
            self.write_cert_file(self.get_ovf("appliance.ca_cert_key"), CA_KEY, 0o644)

    def write_anyip_config(self) -> None:
        cidrs = self.get_ovf("loadbalance.service_ip_range")
        if cidrs != "":
            # echo -e "${cidrs//,/\\n}" >> "$anyip_cfg_path": each comma a line break, escapes read too
            self.append(ANYIP_ROUTES_CFG, bash_echo("-e", cidrs.replace(",", "\\n")))

    def route_table_lines(self, table_id: str, network: str, mac: str, ip: str, gateway: str) -> list[str]:
        return [f"{table_id},{network},{mac},{ip},{gateway}"]

    def write_route_table_config(self, table_id: str, network: str, ip_key: str, gateway_key: str) -> None:
        gateway = self.get_ovf(gateway_key)
        if gateway in ("", "null"):
            return
        mac = self.get_mac_for_network(network)
        if mac is None:
            raise ScriptExit(1)  # mac=$(getMacForNetwork ...) failed: set -e ends the first boot
        ip = self.get_ovf(ip_key)
        if ip not in ("", "null"):
            for line in self.route_table_lines(table_id, network, mac, ip, gateway):
                self.append(ROUTE_TABLES_CFG, f"{line}\n")  # echo "..." >> "/etc/vmware/route-tables.cfg"

    def write_net_post_config(self) -> None:
        self.write_route_table_config("2", "workload", "network.workload_ip", "network.workload_gateway")
        if self.get_mac_for_network("frontend") is not None:
            self.write_route_table_config("3", "frontend", "network.frontend_ip", "network.frontend_gateway")

    def steps(self) -> list:
        """The first-boot branch's steps played here, in order. (v0.1.7 to v0.1.10 also call
        ``writeRouteTableConfig`` with no argument: ``get.ovf ""`` is empty, so it returns at once.)"""
        return [self.write_ca_files, self.write_anyip_config, self.write_net_post_config]

    def first_boot(self) -> dict[str, str]:
        """The files as the first boot leaves them (``set -e``: a step that fails ends it, the files as they are)."""
        try:
            for step in self.steps():
                step()
        except ScriptExit:
            pass
        return self.files


class OvfToCloudInitV0_1_8(OvfToCloudInitV0_1_7):
    """v0.1.8: ``getMacForNetwork`` fails without the NIC, so the frontend gets a line only with its NIC."""

    def get_mac_for_network(self, name: str) -> Optional[str]:
        return self.nics.get(name)


class OvfToCloudInitV0_1_9(OvfToCloudInitV0_1_8):
    """v0.1.9 (v0.1.10 holds the same file): each network's gateway line, then its link-scoped line."""

    def route_table_lines(self, table_id: str, network: str, mac: str, ip: str, gateway: str) -> list[str]:
        return [f"{table_id},{network},{mac},{ip},{gateway}",  # default gateway
                f"{table_id},{network},{mac},{ip}"]  # link-scoped route


class OvfToCloudInitV0_2_0(OvfToCloudInitV0_1_9):
    """v0.2.0: ``network.additional_workload_networks`` written to workload-networks.cfg, one per line."""

    def write_workload_networks(self) -> None:
        networks = self.get_ovf("network.additional_workload_networks")
        if networks:  # [ -n "${networks}" ]
            # echo "${networks//,/$'\n'}" > /etc/vmware/workload-networks.cfg
            self.files[WORKLOAD_NETWORKS_CFG] = bash_echo(networks.replace(",", "\n"))

    def steps(self) -> list:
        return [self.write_ca_files, self.write_anyip_config, self.write_workload_networks,
                self.write_net_post_config]
