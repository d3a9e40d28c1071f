"""The simulated appliance's first process: PID 1 of its PID namespace, in its network namespace,
with a private view of the filesystem. It boots as the appliance does, from the property values.

Started by :class:`~tkgs_simulators.appliance.ApplianceSimulator` with the configuration as
JSON on standard input (never on the command line: it holds the root password). It

1. makes the private view: tmpfs on ``/run`` and ``/var/log``; ``/etc``, ``/root``, ``/var/lib`` and
   ``/usr/local/sbin`` overlaid with their writes on the appliance's own disk (a folder the
   simulator owns, so they outlive a reboot), and ``/var/log/vmware`` kept there too, so the host's
   ``/etc`` is never touched; the ``systemctl``/``journalctl`` stand-ins mounted over the real ones;
2. configures the interfaces from ``network.*`` (addresses, the default route via the
   management gateway); runs the release's ``ovf-to-cloud-init.sh`` as its unit does at every boot
   (:mod:`.scripts`, the release's own scripts read at its tag), its ``set -x`` trace appended to
   ``/var/log/vmware/ovf-to-cloud-init.log``: at the first boot it writes ``/etc/vmware/anyip-routes.cfg``,
   ``route-tables.cfg``, (v0.2.0) ``workload-networks.cfg``, a CA the user sent, ``encoded_userdata.txt``
   and the image's ``/etc/ssh/sshd_config`` edited (``PermitRootLogin``, ``ListenAddress``) from the
   properties and the OVF environment, and says what it published in the VM's guestinfo (the userdata
   with root's hash); then starts both units, which run real ``ip`` commands as the release's scripts
   do (:mod:`.units`);
3. at its first boot sets root's password and makes sshd's own host keys; starts sshd on the
   configuration its disk holds;
4. starts the real HAProxy on the appliance's configuration (:mod:`.load_balancer`), and the
   Data Plane API stand-in over it, signed by the appliance's CA (made at first boot by its
   ``new-ca.sh``, :mod:`.scripts.new_ca`, SHA-1 signed, and kept in ``/etc/haproxy``, as the appliance
   keeps its own);
5. prints one JSON line (the CA, the host keys, what it published in guestinfo) and waits for SIGTERM, on
   which it shuts down as systemd does: the units stopped (their ``down`` runs), then the API, HAProxy and
   sshd.

A later boot (``"boot": "again"``, after :meth:`ApplianceSimulator.reboot`) starts from the files on
its disk on a fresh kernel (a new network namespace): nothing is written from the properties again
(but HAProxy's configuration, which first boot's head is written to again: what a controller
programmed is gone after a reboot of the simulated appliance).

Faults (``faults`` in the configuration) make it boot as the appliance's users meet it broken:
``service_ip_range`` (e.g. the article's ``10.64.0.1/23``), ``addresses`` (a wrong interface
address), ``route_tables`` (the lines of route-tables.cfg), ``workload_networks`` (the lines of
v0.2.0's workload-networks.cfg), ``dataplane`` (``down``, ``expired``, ``unnamed``, ``other-body``),
``sshd_keys`` (``refused``: an sshd that accepts no key), ``lose_session_at`` and ``lose_sshd_at``
(commands at whose start the SSH session is lost, and with
``lose_sshd_at`` sshd itself too), ``lose_answer_at`` (commands that run to their end, the session lost
before their answer leaves).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import children
from . import load_balancer
from . import units
from .dataplane_server import serve
from .haproxy_config import CONFIG_FILE, head, userlist_users
from .netns import announce
from .scripts import new_cert, played
from .scripts.new_ca import new_ca
from .scripts.new_cert import NEW_CERT
from .scripts.ovf_to_cloud_init import CA_CRT, CA_KEY, LOG, SSHD_CONFIG, WORKLOAD_NETWORKS_CFG
from .scripts.shipped import ROUTE_TABLES_CFG, SHIPPED

# Where the Data Plane API's certificate lives (dataplaneapi.cfg's TLS_CERTIFICATE and TLS_KEY at v0.1.10)
SERVER_CRT, SERVER_KEY = "/etc/haproxy/server.crt", "/etc/haproxy/server.key"

def sh(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result


def private_view(python: str, disk: str) -> None:
    """tmpfs on /run and /var/log, but /var/log/vmware on ``disk`` (the appliance's logs outlive a reboot);
    /etc, /root, /var/lib, /usr/local/sbin and /usr/local/bin overlaid with their writes on ``disk`` (overlays,
    not tmpfs: what lives there, a Python under /root/.pyenv say, stays visible)."""
    for folder in ("/run", "/var/log"):
        sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", folder)
    os.makedirs(f"{disk}/var-log-vmware", exist_ok=True)
    os.makedirs("/var/log/vmware", exist_ok=True)
    sh("mount", "--bind", f"{disk}/var-log-vmware", "/var/log/vmware")
    for folder in ("/etc", "/root", "/var/lib", "/usr/local/sbin", "/usr/local/bin"):
        upper, work = f"{disk}/overlay{folder}/upper", f"{disk}/overlay{folder}/work"
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={folder},upperdir={upper},workdir={work}", folder)
    for folder in ("/run/sshd", str(units.STATE_DIR)):
        os.makedirs(folder, exist_ok=True)
    rt_tables = Path("/etc/iproute2/rt_tables")  # the appliance has it; routetablectl.sh stops without it
    if not rt_tables.exists():  # an iproute2 that keeps it in /usr/share only
        rt_tables.parent.mkdir(parents=True, exist_ok=True)
        packaged = Path("/usr/share/iproute2/rt_tables")
        reserved = "255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n"
        rt_tables.write_text(packaged.read_text() if packaged.exists() else reserved)
    for name in ("systemctl", "journalctl"):
        stand_in = Path("/usr/local/sbin") / name
        # The module file itself, not `-m`: importing the tkgs_lib package would cost every call a second.
        stand_in.write_text(f"#!/bin/sh\nexec {python} -S {units.__file__} {name} \"$@\"\n")
        stand_in.chmod(0o755)
        for real in (f"/usr/bin/{name}", f"/bin/{name}"):
            if os.path.isfile(real) and not os.path.islink(real):
                sh("mount", "--bind", str(stand_in), real)


def configure_network(config: dict) -> None:
    """The interfaces' addresses, each announced as it comes up (gratuitous ARP: a neighbour that held the address
    at the MAC of the VM before this one, an upgrade's old appliance say, takes the new MAC at once), and the
    default route."""
    props, faults = config["properties"], config.get("faults", {})
    sh("ip", "link", "set", "lo", "up")
    for role in config["interfaces"]:
        sh("ip", "link", "set", role, "up")
        address = faults.get("addresses", {}).get(role) or props.get(f"network.{role}_ip")
        if address:
            sh("ip", "addr", "add", address, "dev", role)
            announce(role, [address.split("/", 1)[0]])
    gateway = props.get("network.management_gateway")
    if gateway:
        sh("ip", "route", "add", "default", "via", gateway, "dev", "management", check=False)


def image_sshd_config(config: dict) -> str:
    """The image's ``/etc/ssh/sshd_config`` before its first boot. Photon's file is not in the appliance's
    repository: this one holds what first boot's seds act on (a ``PermitRootLogin`` line and
    ``#ListenAddress 0.0.0.0``, ``permitRootViaSSH`` and ``bindSSHToIP`` at v0.1.7 to v0.2.0), IPv4 only
    (``ansible/roles/common/tasks/main.yml``: "Bind SSH only to IPv4"), and what this machine's sshd needs.
    The fault ``sshd_keys: refused`` boots an sshd that refuses every key (``PubkeyAuthentication no``)."""
    keys = "no" if config.get("faults", {}).get("sshd_keys") == "refused" else "yes"
    return ("# /etc/ssh/sshd_config of the simulated HAProxy appliance's image\n"
            "PermitRootLogin no\n#ListenAddress 0.0.0.0\nAddressFamily inet\nPasswordAuthentication yes\n"
            f"PubkeyAuthentication {keys}\nKbdInteractiveAuthentication no\nUsePAM yes\nPrintMotd no\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n")


def ovf_to_cloud_init(config: dict):
    """The release's ``ovf-to-cloud-init.sh``, given what vCenter hands the guest: the property values (a
    fault's as a person typed it into vCenter), the NICs' MACs and the OVF environment they make."""
    from .ovf_environment import ovf_environment

    props, faults = config["properties"], config.get("faults", {})
    if "service_ip_range" in faults:  # the value as a person typed it into vCenter
        props = {**props, "loadbalance.service_ip_range": faults["service_ip_range"]}
    nics = {role: nic["mac"] for role, nic in config["interfaces"].items()}
    return played(config["release"]).first_boot(props, nics, ovfenv=ovf_environment(props, nics),
                                                 image={SSHD_CONFIG: image_sshd_config(config)})


def later_boot_log(config: dict) -> None:
    """The unit runs the script at every boot (``tee -a`` its log): a later boot's branch, appended."""
    with open(LOG, "a") as log:
        log.write(ovf_to_cloud_init(config).later_boot())


def first_boot_files(config: dict) -> dict:
    """The files the release's first boot writes from its properties (:mod:`.scripts.ovf_to_cloud_init`),
    its log appended to, or, with a fault, as a broken first boot (or a careless edit) left them; returns
    what it published in the VM's guestinfo."""
    faults = config.get("faults", {})
    nics = {role: nic["mac"] for role, nic in config["interfaces"].items()}  # for the faults' route-tables.cfg
    boot = ovf_to_cloud_init(config)
    files = boot.first_boot()
    if "route_tables" in faults:  # the lines below the shipped comment; {workload}: that NIC's MAC
        files[ROUTE_TABLES_CFG] = SHIPPED[ROUTE_TABLES_CFG] + "".join(
            f"{line.format(**nics)}\n" for line in faults["route_tables"])
    if "workload_networks" in faults and WORKLOAD_NETWORKS_CFG in files:
        files[WORKLOAD_NETWORKS_CFG] = "".join(f"{line}\n" for line in faults["workload_networks"])
    for path, text in files.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a" if path == LOG else "w") as out:  # the unit's `tee -a`
            out.write(text)
        if path in boot.modes:
            Path(path).chmod(boot.modes[path])
    return boot.published


def first_boot_accounts(config: dict) -> None:
    """Root's password and sshd's own host keys, made once, kept on the appliance's disk."""
    props = config["properties"]
    for key in Path("/etc/ssh").glob("ssh_host_*"):
        key.unlink()  # the host's keys are not the appliance's: it makes its own
    for kind in ("ed25519", "ecdsa"):  # not RSA: a 3072-bit key costs half a second of every boot
        sh("ssh-keygen", "-q", "-t", kind, "-N", "", "-f", f"/etc/ssh/ssh_host_{kind}_key")
    password = props.get("appliance.root_pwd", "")
    if password:
        sh("chpasswd", input=f"root:{password}\n")
    keys = config.get("authorized_keys") or []
    if keys:  # a person's (or a test's) key for root, as one would add to the appliance
        ssh_dir = Path("/root/.ssh")
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text("".join(f"{k.strip()}\n" for k in keys))
        (ssh_dir / "authorized_keys").chmod(0o600)


LOGIN_SHELL = Path("/usr/local/sbin/tkgs-login-shell")


def lose_sessions_at(commands: list[str], sshd: list[str], answers: list[str] = ()) -> None:
    """A fault for tests: the SSH session is lost when a command holding one of ``commands`` starts
    (each once), as a dropped connection would lose it; at one of ``sshd`` sshd dies first, so no new
    session can be made either; at one of ``answers`` the command runs to its end and the session is
    lost before its answer leaves (the change made, the caller never told). Root's login shell, which
    runs every command sshd is given, kills its session's sshd process."""
    marks = units.STATE_DIR / "lose-session-at"
    marks.mkdir(parents=True, exist_ok=True)
    for i, command in enumerate(commands):
        (marks / f"session-{i}").write_text(command)
    for i, command in enumerate(sshd):
        (marks / f"sshd-{i}").write_text(command)
    for i, command in enumerate(answers):
        (marks / f"answer-{i}").write_text(command)
    LOGIN_SHELL.write_text(f"""#!/bin/bash
# The simulated appliance's login shell for root: loses the session at a test's chosen command, once.
if [ "$1" = "-c" ]; then
    for mark in {marks}/*; do
        [ -f "$mark" ] || continue
        case "$2" in *"$(cat "$mark")"*)
            rm -f "$mark"
            # sshd itself goes first: the session is lost, and no new one can be made
            case "$mark" in */sshd-*) pkill -9 -f '/usr/sbin/sshd -D -e';; esac  # its title: sshd: /usr/sbin/sshd -D -e [listener]
            case "$mark" in */answer-*) /bin/bash -c "$2" >/dev/null 2>&1;; esac  # done, and never answered
            kill -9 "$PPID"; exit 255;;
        esac
    done
fi
exec /bin/bash "$@"
""")
    LOGIN_SHELL.chmod(0o755)
    sh("usermod", "-s", str(LOGIN_SHELL), "root")


def start_sshd(config: dict) -> subprocess.Popen:
    # The host's message of the day and its logind are not the appliance's: asking them costs every session.
    for pam, module in ((Path("/etc/pam.d/sshd"), "pam_motd"), (Path("/etc/pam.d/common-session"), "pam_systemd")):
        if pam.exists():
            pam.write_text("".join(line for line in pam.read_text().splitlines(keepends=True) if module not in line))
    # /etc/ssh/sshd_config is the image's, as its first boot edited it (and whatever changed it since)
    log = open("/var/log/sshd.log", "w")
    return subprocess.Popen(["/usr/sbin/sshd", "-D", "-e"], stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    try:
        return boot_and_serve(json.loads(sys.stdin.readline()))
    except Exception as exc:  # noqa: BLE001 (the parent reads this line and says why the boot failed)
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1


def install_new_cert(python: str, release: str) -> None:
    """``/usr/local/bin/new-cert.sh`` as the release's image ships it (:mod:`.scripts.new_cert`, played)."""
    script = Path(NEW_CERT)
    script.write_text(f"#!/bin/sh\nexec {python} -S {new_cert.__file__} --release {release} \"$@\"\n")
    script.chmod(0o755)


def first_server_certificate(config: dict, hostname: str) -> None:
    """cloud-init's ``runcmd`` at first boot (``userdata.txt``): the Data Plane API's certificate from the CA,
    naming the host, localhost, 127.0.0.1 and every interface's address (``-n`` from v0.1.10)."""
    props = config["properties"]
    addresses = [props[f"network.{role}_ip"].split("/", 1)[0] for role in config["interfaces"]
                 if props.get(f"network.{role}_ip")]
    skip = ["-n"] if "n" in played(config["release"]).new_cert.OPTIONS else []
    status = played(config["release"]).new_cert().run(
        [*skip, "-1", CA_CRT, "-2", CA_KEY, "-3", ",".join(["127.0.0.1", *addresses]), "-4", "localhost", hostname,
         str(Path(SERVER_CRT).parent)])
    if status:
        raise RuntimeError(f"new-cert.sh failed with exit status {status} at first boot")


def start_dataplane(props: dict, faults: dict, balancer, ca_pem: str, ca_key: str, hostname: str):
    """The Data Plane API as dataplaneapi.service starts it: the ``controller`` userlist of haproxy.cfg and the
    certificate in server.crt and server.key (dataplaneapi.cfg's TLS_CERTIFICATE and TLS_KEY); a test's fault
    (``expired``, ``unnamed``) serves a certificate made for it instead. None when it is down (a fault)."""
    if faults.get("dataplane") == "down":
        return None
    users = userlist_users(Path(CONFIG_FILE).read_text())
    balancer.configuration.head = head(users)  # what the API writes back from now on
    certificate = {}
    if faults.get("dataplane") not in ("expired", "unnamed"):
        certificate = {"cert_pem": Path(SERVER_CRT).read_text(), "key_pem": Path(SERVER_KEY).read_text()}
    addresses = [props[k].split("/", 1)[0] for k in ("network.management_ip", "network.workload_ip",
                                                     "network.frontend_ip") if props.get(k)]
    return serve(props["network.management_ip"].split("/", 1)[0], int(props.get("loadbalance.dataplane_port") or 5556),
                 ca_pem=ca_pem, ca_key_pem=ca_key, hostname=hostname, addresses=addresses, users=users,
                 fault=faults.get("dataplane", ""), configuration=balancer.configuration, **certificate)


def dataplane_asked(server, start):
    """What ``systemctl start|stop|restart dataplaneapi`` asked (:func:`.units.ask_dataplane`), done: the API
    stopped, and started again (``start()``) from the files it reads; the unit's state says how it went."""
    state = units.load(units.DATAPLANE)
    try:
        asked = json.loads(units.DATAPLANE_REQUEST.read_text())
    except (OSError, ValueError):
        return server
    journal = units.Journal(state, units.DATAPLANE)
    if server is not None and asked["verb"] in ("stop", "restart"):
        journal.systemd(f"Stopping {units.DATAPLANE}...")
        server.shutdown()
        server.server_close()
        server = None
        state["active"] = "inactive"
        journal.systemd(f"Stopped {units.DATAPLANE}.")
    if asked["verb"] in ("start", "restart") and server is None:
        journal.systemd(f"Started {units.DATAPLANE}.")
        try:
            server = start()
            state["active"] = "active"
        except Exception as exc:  # noqa: BLE001 (a certificate that is not its key's, a file missing: the unit fails)
            journal.service(f"level=fatal msg=\"{type(exc).__name__}: {exc}\"")
            journal.systemd(f"{units.DATAPLANE}: Main process exited, code=exited, status=1/FAILURE")
            state["active"] = "failed"
    state["handled"] = asked["number"]
    units.save(units.DATAPLANE, state)
    return server


def appliance_ca(local_ipv4: str) -> tuple[str, str]:
    """The CA the appliance keeps in /etc/haproxy: the user's own, which first boot wrote there from
    both properties (writeCAfiles), else the one cloud-init makes at the first boot (userdata.txt's
    ``new-ca.sh -n '{{ ds.meta_data.local_ipv4 }}' /etc/haproxy``: :mod:`.scripts.new_ca`, SHA-1 signed);
    read back on later boots."""
    kept_cert, kept_key = Path(CA_CRT), Path(CA_KEY)
    if kept_cert.exists() and kept_key.exists():
        return kept_cert.read_text(), kept_key.read_text()
    ca_pem, ca_key = new_ca(local_ipv4)
    kept_cert.parent.mkdir(parents=True, exist_ok=True)
    kept_cert.write_text(ca_pem)
    kept_key.touch(mode=0o600)
    kept_key.write_text(ca_key)
    return ca_pem, ca_key


def boot_and_serve(config: dict) -> int:
    props, faults = config["properties"], config.get("faults", {})
    first = config.get("boot", "first") == "first"
    stopping, asked = [], []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGUSR1, lambda *_: asked.append(True))  # systemctl ... dataplaneapi
    private_view(config["python"], config["disk"])
    units.RELEASE_FILE.write_text(config["release"])  # the scripts on its disk are that release's
    install_new_cert(config["python"], config["release"])
    hostname = props.get("network.hostname", "haproxy.local")
    sh("hostname", hostname)
    configure_network(config)
    published: dict = {}
    if first:
        published = first_boot_files(config)
        first_boot_accounts(config)
    else:
        later_boot_log(config)
    units.start(units.ROUTE_TABLES)  # route-tables.service is ordered Before=anyip-routes.service
    units.start(units.ANYIP)  # ... and anyip-routes.service Before=haproxy.service
    balancer = load_balancer.boot(props, first)
    ca_pem, ca_key = appliance_ca(props["network.management_ip"].split("/", 1)[0])
    if first:
        first_server_certificate(config, hostname)
    if faults.get("lose_session_at") or faults.get("lose_sshd_at") or faults.get("lose_answer_at"):
        lose_sessions_at(list(faults.get("lose_session_at", ())), list(faults.get("lose_sshd_at", ())),
                         list(faults.get("lose_answer_at", ())))
    sshd = start_sshd(config)

    def start():
        return start_dataplane(props, faults, balancer, ca_pem, ca_key, hostname)

    server = start()
    units.save(units.DATAPLANE, {"active": "active" if server is not None else "inactive", "log": [], "handled": 0})
    host_keys = [p.read_text().strip() for p in sorted(Path("/etc/ssh").glob("ssh_host_*_key.pub"))]
    print(json.dumps({"ready": True, "ca": ca_pem, "host_keys": host_keys, "guestinfo": published}), flush=True)
    while not stopping:
        children.reap_orphans()  # PID 1 reaps every orphan of the namespace
        if asked:
            asked.clear()
            server = dataplane_asked(server, start)
        time.sleep(0.1)
    # Shut down as systemd does: in the reverse order of the start (the units' down runs).
    if server is not None:
        server.shutdown()
    balancer.stop()
    units.stop(units.ANYIP)
    units.stop(units.ROUTE_TABLES)
    sshd.terminate()
    try:
        sshd.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sshd.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
