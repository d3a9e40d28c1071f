"""``ovf-to-cloud-init.sh`` as each release has it: the files it writes from the OVF properties, what it
publishes in the VM's guestinfo, and the trace its ``set -x`` leaves in its log.

Read in haproxytech/vmware-haproxy at each tag,
``ansible/roles/cloudinit/files/var/lib/vmware/ovf-to-cloud-init.sh`` (blobs 3a759f3 at v0.1.7, 47bdbcf
at v0.1.8, d97c478 at v0.1.9 and v0.1.10, 37cd186 at v0.2.0), never copied: one class per version of the
file, each a subclass of the one before that overrides what ``git diff`` between the two tags changes,
methods named after the script's functions. The unit that runs it, ``ovf-to-cloud-init.service`` (blob
46c4455 at every tag), runs it at every boot as ``/bin/sh -c '/var/lib/vmware/ovf-to-cloud-init.sh 2>&1 |
tee -a /var/log/vmware/ovf-to-cloud-init.log'`` in ``/var/lib/vmware``; the script sets ``set -e`` and
``set -x``, so the log keeps, appended boot after boot, every command it ran with its values, and what
it printed.

Played, in the order of the first-boot branch (``.ovf_to_cloud_init.done`` absent): the checks of the
OVF environment, ``publishUserdata`` (with ``getRootPwd``: root's password hashed by ``openssl passwd -1
-salt SaltSalt``, put into ``userdata.txt``, base64-encoded, kept in ``encoded_userdata.txt`` and
published as the guestinfo ``userdata``), ``permitRootViaSSH`` and ``bindSSHToIP`` (seds on
``/etc/ssh/sshd_config``), ``writeCAfiles``, ``writeAnyipConfig``, ``writeRouteTableConfig`` (through
``writeNetPostConfig``) and v0.2.0's ``writeWorkloadNetworks``; traced only (the simulated HAProxy and
Data Plane API stand-in take the user, password, address and port from the properties themselves):
``setHAProxyUserPass``, ``bindDataPlaneAPIToIP``, ``setDataPlaneAPIPort``, and ``disableDefaultRoute``
for a static address. Each is traced as bash's ``set -x`` writes it (:class:`~.shell.XTrace`). On a later
boot, the other branch: ``ensureMetadata``. Not played, so absent from the trace: ``publishMetadata``
(cloud-init's network metadata) and ``ensureMetadata``'s body.
"""

from __future__ import annotations

import base64
import subprocess
from typing import Mapping, Optional

from .shell import ScriptExit, XTrace, bash_echo
from .shipped import ANYIP_ROUTES_CFG, ROUTE_TABLES_CFG, SHIPPED, USERDATA_TXT

__all__ = ["OvfToCloudInitV0_1_7", "OvfToCloudInitV0_1_8", "OvfToCloudInitV0_1_9", "OvfToCloudInitV0_1_10",
           "OvfToCloudInitV0_2_0", "CA_CRT", "CA_KEY", "WORKLOAD_NETWORKS_CFG", "ENCODED_USERDATA", "FIRST_BOOT_DONE",
           "LOG", "SSHD_CONFIG", "format_certificate"]

CA_CRT, CA_KEY = "/etc/haproxy/ca.crt", "/etc/haproxy/ca.key"  # ca_crt_path, ca_key_path
WORKLOAD_NETWORKS_CFG = "/etc/vmware/workload-networks.cfg"  # v0.2.0
ENCODED_USERDATA = "/var/lib/vmware/encoded_userdata.txt"  # encoded_userdata_path
ENCODED_METADATA = "/var/lib/vmware/encoded_metadata.txt"  # encoded_metadata_path
FIRST_BOOT_DONE = "/var/lib/vmware/.ovf_to_cloud_init.done"  # first_boot_path
LOG = "/var/log/vmware/ovf-to-cloud-init.log"  # the unit's `tee -a`
SSHD_CONFIG = "/etc/ssh/sshd_config"
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
DATAPLANE_CFG = "/etc/haproxy/dataplaneapi.cfg"  # data_plane_api_cfg


def format_certificate(text: str) -> str:
    """``formatCertificate``: sed turns every space into a line break, but those after ``BEGIN``,
    ``PRIVATE`` and ``END`` (so "-----BEGIN RSA PRIVATE KEY-----" breaks after "RSA")."""
    for word in ("BEGIN", "PRIVATE", "END"):
        text = text.replace(f"{word} ", f"{word}_")
    text = text.replace(" ", "\n")
    for word in ("BEGIN", "PRIVATE", "END"):
        text = text.replace(f"{word}_", f"{word} ")
    return text


def _openssl_passwd(*args: str) -> str:
    """``openssl passwd ...``: an MD5-crypt hash, by a real openssl."""
    return subprocess.run(["openssl", "passwd", *args], capture_output=True, text=True, check=True).stdout.strip()


def _printf_q(value: str) -> str:
    """``printf %q``, by a real bash."""
    return subprocess.run(["bash", "-c", 'printf %q "$1"', "printf", value], capture_output=True, text=True,
                          check=True).stdout


class OvfToCloudInitV0_1_7:
    """v0.1.7: one route-tables.cfg line per network with a gateway; ``getMacForNetwork`` succeeds
    without the NIC (``return 0``), so a frontend with a gateway and an address gets its line then too;
    the marker is touched before the OVF environment is checked, and existing userdata stops the boot."""

    PROLOGUE_KEYS = ("network.hostname", "network.management_ip", "network.workload_ip", "network.frontend_ip",
                     "network.management_gateway", "network.workload_gateway", "network.frontend_gateway")

    def __init__(self, ovf: Mapping[str, str], nics: Mapping[str, str], *, ovfenv: str = "<Environment/>",
                 image: Optional[Mapping[str, str]] = None) -> None:
        """``ovf``: the property values as vCenter hands them over; ``nics``: name → MAC, as
        ``/sys/class/net/<name>/address`` holds it; ``ovfenv``: the OVF environment document
        (``ovf-rpctool get ovfenv``); ``image``: files of the image the script edits (``sshd_config``)."""
        self.ovf, self.nics, self.ovfenv = ovf, nics, ovfenv
        self.files: dict[str, str] = {**SHIPPED, **(image or {})}  # path → text, from what the image ships
        self.modes: dict[str, int] = {}
        self.published: dict[str, str] = {}  # guestinfo key → value, as `ovf-rpctool set` publishes it
        self.trace = XTrace()

    # --- the helpers -----------------------------------------------------------------------------

    def get_ovf(self, key: str) -> str:
        """``$(ovf-rpctool get.ovf KEY)``: the property's value ("" when not sent), its trailing line breaks dropped."""
        return (self.ovf.get(key) or "").rstrip("\n")

    def read_ovf(self, depth: int, name: str, key: str) -> str:
        """``name=$(ovf-rpctool get.ovf key)`` run at ``depth``, traced."""
        self.trace.command(depth + 1, "ovf-rpctool", "get.ovf", key)
        value = self.get_ovf(key)
        self.trace.assign(depth, name, value)
        return value

    def test(self, depth: int, left: str, op: str, right: str) -> bool:
        """``[ "left" op "right" ]``, traced."""
        self.trace.command(depth, "[", left, op, right, "]")
        return (left == right) == (op == "==")

    def append(self, path: str, text: str) -> None:
        self.files[path] = self.files.get(path, "") + text

    def sed_lines(self, path: str, change) -> None:
        """``sed -i`` on ``path``: ``change(line)`` for each line (the file's last line break kept)."""
        text = self.files.get(path, "")
        lines = text.split("\n")
        self.files[path] = "\n".join(change(line) for line in lines)

    def get_mac_for_network(self, name: str, depth: int = 0) -> Optional[str]:
        """``getMacForNetwork``: the NIC's MAC; None for ``return 1``."""
        self._trace_mac(name, depth)
        if depth and name not in self.nics:
            self.trace.command(depth, "return", "0")
        return self.nics.get(name, "")  # v0.1.7: `return 0` when there is no such NIC

    def _trace_mac(self, name: str, depth: int) -> None:
        if depth:
            self.trace.command(depth, "getMacForNetwork", name)
            self.trace.command(depth, "[", "!", "-f", f"/sys/class/net/{name}/address", "]")
            if name in self.nics:
                self.trace.command(depth, "cat", f"/sys/class/net/{name}/address")

    # --- the script ------------------------------------------------------------------------------

    def prologue(self) -> None:
        """The assignments at the top of the script, traced at every boot."""
        names = ("hostname_key", "management_ip_key", "workload_ip_key", "frontend_ip_key", "management_gw_key",
                 "workload_gw_key", "frontend_gw_key")
        self.trace.assign(1, "data_plane_api_cfg", DATAPLANE_CFG)
        for name, key in zip(names, self.PROLOGUE_KEYS):
            self.trace.assign(1, name, key)
        self.prologue_extra()
        for name, value in (("management_net_name", "management"), ("workload_net_name", "workload"),
                            ("frontend_net_name", "frontend"), ("encoded_userdata_path", ENCODED_USERDATA),
                            ("encoded_metadata_path", ENCODED_METADATA), ("ca_crt_path", CA_CRT),
                            ("ca_key_path", CA_KEY), ("anyip_cfg_path", ANYIP_ROUTES_CFG),
                            ("net_postconfig_path", "/var/lib/vmware/net-postconfig.sh"),
                            ("first_boot_path", FIRST_BOOT_DONE)):
            self.trace.assign(1, name, value)

    def prologue_extra(self) -> None:
        pass

    def check_for_existing_ovfenv(self) -> None:
        """``checkForExistingOvfenv``: the OVF environment (every property's value in it) read and tested."""
        self.trace.command(1, "checkForExistingOvfenv")
        self.trace.command(2, "ovf-rpctool", "get", "ovfenv")
        self.trace.assign(1, "val", self.ovfenv)
        if self.test(1, self.ovfenv, "==", ""):
            self.trace.command(1, "echo", "Exiting due to no ovfenv to process")
            self.trace.output("Exiting due to no ovfenv to process")
            raise ScriptExit(1)

    def touch_marker(self) -> None:
        self.trace.command(1, "touch", FIRST_BOOT_DONE)
        self.files[FIRST_BOOT_DONE] = ""

    def head(self) -> list:
        """The first-boot branch's first steps: v0.1.7 marks the boot done before it checks anything."""
        return [self.touch_marker, self.check_for_existing_ovfenv, self.check_for_existing_userdata]

    def check_for_existing_userdata(self) -> None:
        """``checkForExistingUserdata`` (v0.1.7): the VM holds no userdata before the first boot publishes it."""
        self.trace.command(1, "checkForExistingUserdata")
        self.trace.command(2, "ovf-rpctool", "get", "userdata")
        self.trace.assign(1, "val", "")
        self.test(1, "", "!=", "")

    def escape_string(self, depth: int, value: str) -> str:
        """``escapeString``: ``printf %q``, then every ``/`` escaped for sed."""
        self.trace.command(depth, "escapeString", value)
        self.trace.command(depth + 1, "printf", "%q", value)
        self.trace.command(depth + 1, "sed", r"s/\//\\\//g")
        escaped = _printf_q(value).replace("/", "\\/")
        self.trace.assign(depth, "escaped", escaped)
        self.trace.command(depth, "echo", escaped)
        return escaped

    def get_root_pwd(self, depth: int) -> tuple[str, str]:
        """``getRootPwd``: root's password, MD5-crypt with the constant salt SaltSalt; (hash, its sed-escaped form)."""
        self.trace.command(depth, "getRootPwd")
        val = self.read_ovf(depth, "val", "appliance.root_pwd")
        self.trace.command(depth + 1, "openssl", "passwd", "-1", "-salt", "SaltSalt", val)
        salt = _openssl_passwd("-1", "-salt", "SaltSalt", val)
        self.trace.assign(depth, "salt", salt)
        return salt, self.escape_string(depth, salt)

    def get_create_default_ca(self, depth: int = 0) -> bool:
        """``getCreateDefaultCA``: "false" only when both properties hold a value (not "" nor "null")."""
        if depth:
            self.trace.command(depth, "getCreateDefaultCA")
            values = (self.read_ovf(depth, "ca_cert", "appliance.ca_cert"),
                      self.read_ovf(depth, "ca_cert_key", "appliance.ca_cert_key"))
            tests = ((values[0], ""), (values[0], "null"), (values[1], ""), (values[1], "null"))
            given = all(self.test(depth, value, "!=", other) for value, other in tests)  # && stops at the first no
            self.trace.command(depth, "echo", "false" if given else "true")
            return not given
        values = (self.get_ovf("appliance.ca_cert"), self.get_ovf("appliance.ca_cert_key"))
        return not all(v not in ("", "null") for v in values)

    def publish_userdata(self) -> None:
        """``publishUserdata``: userdata.txt with root's hash and the CA choice, base64 (wrapped as ``base64``
        wraps), kept in encoded_userdata.txt and published as the guestinfo userdata."""
        self.trace.command(1, "publishUserdata")
        self.trace.command(2, "base64")
        salt, escaped = self.get_root_pwd(3)
        create = "true" if self.get_create_default_ca(3) else "false"
        self.trace.command(2, "sed", "-e", f"s/ROOT_PWD_FROM_OVFENV/{escaped}/", "-e",
                           f"s/CREATE_DEFAULT_CA/{create}/", "userdata.txt")
        userdata = self.userdata_template().replace("ROOT_PWD_FROM_OVFENV", salt).replace("CREATE_DEFAULT_CA", create)
        encoded = base64.encodebytes(userdata.encode()).decode().rstrip("\n")  # $(...) drops the last line break
        self.trace.assign(1, "encoded_userdata", encoded)
        self.trace.command(1, "echo", encoded)
        self.files[ENCODED_USERDATA] = encoded + "\n"
        self.trace.command(1, "ovf-rpctool", "set", "userdata", encoded)
        self.trace.command(1, "ovf-rpctool", "set", "userdata.encoding", "base64")
        self.published.update({"guestinfo.userdata": encoded, "guestinfo.userdata.encoding": "base64"})

    def userdata_template(self) -> str:
        return USERDATA_TXT["v0.1.7"]

    def permit_root_via_ssh(self) -> None:
        """``permitRootViaSSH``: ``PermitRootLogin yes`` when the property is true (any case), else no."""
        self.trace.command(1, "permitRootViaSSH")
        value = self.read_ovf(1, "permit_root_login", "appliance.permit_root_login")
        permit = "yes" if self.test(1, value.lower(), "==", "true") else "no"
        self.trace.assign(1, "permit_root_login", permit)
        self.trace.command(1, "sed", "-i", "-e", f"/^PermitRootLogin/s/^.*$/PermitRootLogin {permit}/", SSHD_CONFIG)
        self.sed_lines(SSHD_CONFIG, lambda line: f"PermitRootLogin {permit}" if line.startswith("PermitRootLogin")
                       else line)

    def bind_services_to_management_ip(self) -> None:
        """``bindServicesToManagementIP``: sshd (and the Data Plane API, not played) on the management address."""
        self.trace.command(1, "bindServicesToManagementIP")
        ip = self.read_ovf(1, "ip", "network.management_ip")
        if self.test(1, ip, "==", "") or self.test(1, ip, "==", "null"):
            raise ScriptExit(1)
        ip = ip.split("/", 1)[0]
        self.trace.assign(1, "ip", ip)
        self.say(f"binding SSH and Data Plane API to the management IP address {ip}")
        self.trace.command(1, "bindSSHToIP", ip)
        self.trace.command(1, "sed", "-i", "-e", f"s/#ListenAddress 0.0.0.0/ListenAddress {ip}/", SSHD_CONFIG)
        self.sed_lines(SSHD_CONFIG, lambda line: line.replace("#ListenAddress 0.0.0.0", f"ListenAddress {ip}"))
        self.say(f"SSH is now bound to IP address {ip}")
        self.trace.command(1, "bindDataPlaneAPIToIP", ip)  # dataplaneapi.cfg: the stand-in binds there itself
        self.trace.command(1, "sed", "-i", "-e", f"s/TLS_HOST=0.0.0.0/TLS_HOST={ip}/", DATAPLANE_CFG)
        self.say(f"Data Plane API is now bound to IP address {ip}")

    def say(self, text: str) -> None:
        """``echo "..."``: traced, and printed into the same log."""
        self.trace.command(1, "echo", text)
        self.trace.output(text)

    def set_dataplane_api_port(self) -> None:
        """``setDataPlaneAPIPort`` (traced: the Data Plane API stand-in listens on the property's port itself)."""
        self.trace.command(1, "setDataPlaneAPIPort")
        port = self.read_ovf(1, "port", "loadbalance.dataplane_port")
        if self.test(1, port, "==", "") or self.test(1, port, "==", "0") or self.test(1, port, "==", "null"):
            port = "5556"
            self.trace.assign(1, "port", port)
        self.trace.command(1, "sed", "-i", "-e", f"s/TLS_PORT=5556/TLS_PORT={port}/", DATAPLANE_CFG)
        self.say(f"Data Plane API port set to {port}")

    def disable_default_route(self, ip_key: str, name: str) -> None:
        """``disableDefaultRoute`` (traced): a static address leaves the default route alone."""
        self.trace.command(1, "disableDefaultRoute", ip_key, name)
        ip = self.read_ovf(1, "ip", ip_key)
        if self.test(1, ip, "==", "") or self.test(1, ip, "==", "null"):
            raise ScriptExit(1)  # DHCP: not played

    def set_haproxy_user_pass(self) -> None:
        """``setHAProxyUserPass``: the Data Plane API's user and password (an MD5-crypt hash) into haproxy.cfg
        (traced; the simulated HAProxy's configuration writes its userlist itself)."""
        self.trace.command(1, "setHAProxyUserPass")
        user = self.read_ovf(1, "user", "loadbalance.haproxy_user")
        password = self.read_ovf(1, "pass", "loadbalance.haproxy_pwd")
        if self.test(1, user, "==", "") or self.test(1, user, "==", "null"):
            user = "admin"
            self.trace.assign(1, "user", user)
        if self.test(1, password, "==", "") or self.test(1, password, "==", "null"):
            password = "haproxy"
            self.trace.assign(1, "pass", password)
        self.trace.command(2, "openssl", "passwd", "-1", password)
        hashed = _openssl_passwd("-1", password)
        self.trace.assign(1, "pass", hashed)
        self.trace.command(1, "sed", "-i", "-e", f"/^userlist controller/a\\  \\user {user} password {hashed}",
                           HAPROXY_CFG)

    def write_cert_file(self, value: str, path: str, mode: int) -> None:
        """``writeCertFile``: ``echo "$1" > "$2"``, ``formatCertificate "$2"``, ``chmod "$3" "$2"``."""
        self.trace.command(1, "writeCertFile", value, path, f"{mode:o}")
        self.trace.command(1, "echo", value)
        self.trace.command(1, "formatCertificate", path)
        self.trace.command(1, "sed", "-i", "-e", "s/BEGIN /BEGIN_/g", "-e", "s/PRIVATE /PRIVATE_/g", "-e",
                           "s/END /END_/g", "-e", "s/ /\\n/g", "-e", "s/BEGIN_/BEGIN /g", "-e",
                           "s/PRIVATE_/PRIVATE /g", "-e", "s/END_/END /g", path)
        self.trace.command(1, "chmod", f"{mode:o}", path)
        self.files[path] = format_certificate(bash_echo(value))
        self.modes[path] = mode

    def write_ca_files(self) -> None:
        # cloud-init makes a CA when this is true (userdata.txt's new-ca.sh): the guest does that part
        self.trace.command(1, "writeCAfiles")
        create = self.get_create_default_ca(2)
        if not self.test(1, "true" if create else "false", "==", "false"):
            return
        cert = self.read_ovf(1, "ca_cert", "appliance.ca_cert")
        key = self.read_ovf(1, "ca_cert_key", "appliance.ca_cert_key")
        self.write_cert_file(cert, CA_CRT, 0o644)
        self.write_cert_file(key, CA_KEY, 0o644)

    def write_anyip_config(self) -> None:
        self.trace.command(1, "writeAnyipConfig")
        cidrs = self.read_ovf(1, "cidrs", "loadbalance.service_ip_range")
        if not self.test(1, cidrs, "!=", ""):
            return
        # echo -e "${cidrs//,/\\n}" >> "$anyip_cfg_path": each comma a line break, escapes read too
        self.trace.command(1, "echo", "-e", cidrs.replace(",", "\\n"))
        self.append(ANYIP_ROUTES_CFG, bash_echo("-e", cidrs.replace(",", "\\n")))

    def route_table_lines(self, table_id: str, network: str, mac: str, ip: str, gateway: str) -> list[str]:
        return [f"{table_id},{network},{mac},{ip},{gateway}"]

    def write_route_table_config(self, table_id: str, network: str, ip_key: str, gateway_key: str) -> None:
        self.trace.command(1, "writeRouteTableConfig", *(a for a in (table_id, network, ip_key, gateway_key) if a))
        self.trace.assign(1, "id", table_id)
        gateway = self.read_ovf(1, "gateway", gateway_key)
        if self.test(1, gateway, "==", "") or self.test(1, gateway, "==", "null"):
            self.trace.command(1, "return", "0")
            return
        self.trace.assign(1, "network", network)
        mac = self.get_mac_for_network(network, depth=2)
        if mac is None:
            raise ScriptExit(1)  # mac=$(getMacForNetwork ...) failed: set -e ends the first boot
        self.trace.assign(1, "mac", mac)
        ip = self.read_ovf(1, "ip", ip_key)
        if self.test(1, ip, "!=", "") and self.test(1, ip, "!=", "null"):
            for line in self.route_table_lines(table_id, network, mac, ip, gateway):
                self.trace.command(1, "echo", line)
                self.append(ROUTE_TABLES_CFG, f"{line}\n")  # echo "..." >> "/etc/vmware/route-tables.cfg"

    def write_net_post_config(self) -> None:
        self.trace.command(1, "writeNetPostConfig")
        self.disable_default_route("network.workload_ip", "workload")
        self.write_route_table_config("2", "workload", "network.workload_ip", "network.workload_gateway")
        if self.get_mac_for_network("frontend", depth=1) is not None:
            if "frontend" in self.nics:
                self.trace.output(self.nics["frontend"])  # `if getMacForNetwork ...` prints the MAC
            self.disable_default_route("network.frontend_ip", "frontend")
            self.write_route_table_config("3", "frontend", "network.frontend_ip", "network.frontend_gateway")

    def write_route_table_config_unset(self) -> None:
        """``writeRouteTableConfig`` with no argument (v0.1.7 to v0.1.10): ``get.ovf ""`` is empty, so it returns."""
        self.write_route_table_config("", "", "", "")

    def steps(self) -> list:
        """The first-boot branch's steps played here, in order."""
        return [self.publish_userdata, self.permit_root_via_ssh, self.bind_services_to_management_ip,
                self.set_haproxy_user_pass, self.set_dataplane_api_port, self.write_ca_files, self.write_anyip_config,
                self.write_route_table_config_unset, self.write_net_post_config]

    def first_boot(self) -> dict[str, str]:
        """The files as the first boot leaves them (``set -e``: a step that fails ends it, the files as they
        are), its log among them."""
        self.prologue()
        self.test(1, "!", "-f", FIRST_BOOT_DONE)  # [ ! -f "$first_boot_path" ]: traced as '[' '!' -f ... ']'
        try:
            for step in self.head() + self.steps():
                step()
        except ScriptExit:
            pass
        self.files[LOG] = self.trace.text()
        return self.files

    def later_boot(self) -> str:
        """A boot after the first (``.ovf_to_cloud_init.done`` there): the trace it appends to the log."""
        self.prologue()
        self.test(1, "!", "-f", FIRST_BOOT_DONE)
        self.trace.command(1, "ensureMetadata")
        return self.trace.text()


class OvfToCloudInitV0_1_8(OvfToCloudInitV0_1_7):
    """v0.1.8: ``getMacForNetwork`` fails without the NIC, so the frontend gets a line only with its NIC;
    the OVF environment is checked before the marker is touched, and existing userdata no longer stops it."""

    def get_mac_for_network(self, name: str, depth: int = 0) -> Optional[str]:
        self._trace_mac(name, depth)
        if depth and name not in self.nics:
            self.trace.command(depth, "return", "1")
        return self.nics.get(name)

    def head(self) -> list:
        return [self.check_for_existing_ovfenv, self.touch_marker]

    def userdata_template(self) -> str:
        return USERDATA_TXT["v0.1.8"]


class OvfToCloudInitV0_1_9(OvfToCloudInitV0_1_8):
    """v0.1.9: each network's gateway line, then its link-scoped line."""

    def route_table_lines(self, table_id: str, network: str, mac: str, ip: str, gateway: str) -> list[str]:
        return [f"{table_id},{network},{mac},{ip},{gateway}",  # default gateway
                f"{table_id},{network},{mac},{ip}"]  # link-scoped route


class OvfToCloudInitV0_1_10(OvfToCloudInitV0_1_9):
    """v0.1.10: the same script as v0.1.9; its userdata.txt (blob 8bbad8b) asks new-ca.sh and new-cert.sh for
    ``-n`` (keep a CA and certificate already there)."""

    def userdata_template(self) -> str:
        return USERDATA_TXT["v0.1.10"]


class OvfToCloudInitV0_2_0(OvfToCloudInitV0_1_10):
    """v0.2.0: ``network.additional_workload_networks`` written to workload-networks.cfg, one per line."""

    def prologue_extra(self) -> None:
        self.trace.assign(1, "workload_networks_key", "network.additional_workload_networks")

    def write_workload_networks(self) -> None:
        self.trace.command(1, "writeWorkloadNetworks")
        networks = self.read_ovf(1, "networks", "network.additional_workload_networks")
        self.trace.command(1, "[", "-n", networks, "]")
        if networks:  # [ -n "${networks}" ]
            # echo "${networks//,/$'\n'}" > /etc/vmware/workload-networks.cfg
            self.trace.command(1, "echo", networks.replace(",", "\n"))
            self.files[WORKLOAD_NETWORKS_CFG] = bash_echo(networks.replace(",", "\n"))

    def steps(self) -> list:
        return [self.publish_userdata, self.permit_root_via_ssh, self.bind_services_to_management_ip,
                self.set_haproxy_user_pass, self.set_dataplane_api_port, self.write_ca_files, self.write_anyip_config,
                self.write_workload_networks, self.write_net_post_config]
