"""The simulated appliance's first process: PID 1 of its PID namespace, in its network namespace,
with a private view of the filesystem. It boots as the appliance does, from the property values.

Started by :class:`~tkgs_lib.simulators.appliance.ApplianceSimulator` with the configuration as
JSON on standard input (never on the command line: it holds the root password). It

1. makes the private view: tmpfs on ``/run``, ``/root``, ``/var/log`` and ``/usr/local/sbin``;
   ``/etc`` overlaid (its writes land in ``/run``), so the host's ``/etc`` is never touched;
   the ``systemctl``/``journalctl`` stand-ins mounted over the real ones;
2. configures the interfaces from ``network.*`` (addresses, the default route via the
   management gateway), writes ``/etc/vmware/route-tables.cfg`` and ``anyip-routes.cfg`` from the
   properties and starts both units, which run real ``ip`` commands;
3. sets root's password, gives sshd its own host keys and starts it on the management address;
4. starts the real HAProxy on the appliance's configuration (:mod:`.load_balancer`), and the
   Data Plane API stand-in over it, signed by the appliance's CA;
5. prints one JSON line (the CA, the host keys) and waits for SIGTERM.

Faults (``faults`` in the configuration) make it boot as the appliance's users meet it broken:
``service_ip_range`` (e.g. the article's ``10.64.0.1/23``), ``addresses`` (a wrong interface
address), ``route_tables`` (the lines of route-tables.cfg), ``dataplane`` (``down``, ``expired``,
``unnamed``, ``other-body``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import children, load_balancer, units
from .dataplane_server import make_ca, serve

ANYIP_HEADER = """#
# Configuration file that contains a line-delimited list of CIDR values
# that define the network ranges used to bind the load balancer's frontends
# to virtual IP addresses.
#
# * Lines beginning with a comment character, #, are ignored
# * This file is used by the anyip-routes service
#
"""


def sh(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result


def private_view(python: str) -> None:
    """tmpfs on /run and /var/log; /etc, /root and /usr/local/sbin overlaid with their writes in
    /run (overlays, not tmpfs: what lives there, a Python under /root/.pyenv say, stays visible)."""
    for folder in ("/run", "/var/log"):
        sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", folder)
    for folder in ("/etc", "/root", "/usr/local/sbin"):
        upper, work = f"/run/overlay{folder}/upper", f"/run/overlay{folder}/work"
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={folder},upperdir={upper},workdir={work}", folder)
    for folder in ("/run/sshd", str(units.STATE_DIR)):
        os.makedirs(folder, exist_ok=True)
    for name in ("systemctl", "journalctl"):
        stand_in = Path("/usr/local/sbin") / name
        # The module file itself, not `-m`: importing the tkgs_lib package would cost every call a second.
        stand_in.write_text(f"#!/bin/sh\nexec {python} -S {units.__file__} {name} \"$@\"\n")
        stand_in.chmod(0o755)
        for real in (f"/usr/bin/{name}", f"/bin/{name}"):
            if os.path.isfile(real) and not os.path.islink(real):
                sh("mount", "--bind", str(stand_in), real)


def configure_network(config: dict) -> None:
    props, faults = config["properties"], config.get("faults", {})
    sh("ip", "link", "set", "lo", "up")
    for role in config["interfaces"]:
        sh("ip", "link", "set", role, "up")
        address = faults.get("addresses", {}).get(role) or props.get(f"network.{role}_ip")
        if address:
            sh("ip", "addr", "add", address, "dev", role)
    gateway = props.get("network.management_gateway")
    if gateway:
        sh("ip", "route", "add", "default", "via", gateway, "dev", "management", check=False)


def first_boot_files(config: dict) -> None:
    """The two files the appliance writes from its properties, as its first-boot script does."""
    props, faults = config["properties"], config.get("faults", {})
    vmware = Path("/etc/vmware")
    vmware.mkdir(parents=True, exist_ok=True)
    ranges = faults.get("service_ip_range", props.get("loadbalance.service_ip_range", ""))
    (vmware / "anyip-routes.cfg").write_text(ANYIP_HEADER + "".join(f"{r}\n" for r in ranges.split(",") if r))
    lines = []
    for table_id, role in ((2, "workload"), (3, "frontend")):
        gateway, address = props.get(f"network.{role}_gateway"), props.get(f"network.{role}_ip")
        if role in config["interfaces"] and gateway and address:
            lines.append(f"{table_id},{role},{config['interfaces'][role]['mac']},{address},{gateway}\n")
    if "route_tables" in faults:  # lines as a broken first boot (or a careless edit) left them
        lines = [f"{line}\n" for line in faults["route_tables"]]
    (vmware / "route-tables.cfg").write_text(
        "# Configuration file of the route-tables service: <TableID>,<TableName>,<MACAddress>,<CIDR>,<Gateway4>\n"
        + "".join(lines))


def start_sshd(config: dict) -> subprocess.Popen:
    props = config["properties"]
    for key in Path("/etc/ssh").glob("ssh_host_*"):
        key.unlink()  # the host's keys are not the appliance's: it makes its own
    sh("ssh-keygen", "-A")
    password = props.get("appliance.root_pwd", "")
    if password:
        sh("chpasswd", input=f"root:{password}\n")
    permit = "yes" if props.get("appliance.permit_root_login", "true").lower() == "true" else "no"
    address = props["network.management_ip"].split("/", 1)[0]
    drop_in = Path("/etc/ssh/sshd_config.d")
    drop_in.mkdir(parents=True, exist_ok=True)
    (drop_in / "00-tkgs-appliance.conf").write_text(
        f"# The simulated HAProxy appliance\nPermitRootLogin {permit}\nPasswordAuthentication yes\n"
        f"ListenAddress {address}\n")
    keys = config.get("authorized_keys") or []
    if keys:  # a person's (or a test's) key for root, as one would add to the appliance
        ssh_dir = Path("/root/.ssh")
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text("".join(f"{k.strip()}\n" for k in keys))
        (ssh_dir / "authorized_keys").chmod(0o600)
    log = open("/var/log/sshd.log", "w")
    return subprocess.Popen(["/usr/sbin/sshd", "-D", "-e"], stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    try:
        return boot_and_serve(json.loads(sys.stdin.readline()))
    except Exception as exc:  # noqa: BLE001 (the parent reads this line and says why the boot failed)
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1


def boot_and_serve(config: dict) -> int:
    props, faults = config["properties"], config.get("faults", {})
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    private_view(config["python"])
    hostname = props.get("network.hostname", "haproxy.local")
    sh("hostname", hostname)
    configure_network(config)
    first_boot_files(config)
    units.start(units.ROUTE_TABLES)
    units.start(units.ANYIP)
    balancer = load_balancer.boot(props)

    own_cert, own_key = props.get("appliance.ca_cert", ""), props.get("appliance.ca_cert_key", "")
    if own_cert and own_key:
        from tkgs_lib.appliance.ca import pem_from_property

        ca_pem, ca_key = pem_from_property(own_cert), pem_from_property(own_key)
    else:
        ca_pem, ca_key = make_ca(hostname)
    sshd = start_sshd(config)
    server = None
    management = props["network.management_ip"].split("/", 1)[0]
    if faults.get("dataplane") != "down":
        addresses = [props[k].split("/", 1)[0] for k in ("network.management_ip", "network.workload_ip",
                                                         "network.frontend_ip") if props.get(k)]
        server = serve(management, int(props.get("loadbalance.dataplane_port") or 5556), ca_pem=ca_pem,
                       ca_key_pem=ca_key, hostname=hostname, addresses=addresses, users=balancer.users,
                       fault=faults.get("dataplane", ""), configuration=balancer.configuration)
    host_keys = [p.read_text().strip() for p in sorted(Path("/etc/ssh").glob("ssh_host_*_key.pub"))]
    print(json.dumps({"ready": True, "ca": ca_pem, "host_keys": host_keys}), flush=True)
    while not stopping:
        children.reap_orphans()  # PID 1 reaps every orphan of the namespace
        time.sleep(0.2)
    if server is not None:
        server.shutdown()
    balancer.stop()
    sshd.terminate()
    try:
        sshd.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sshd.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
