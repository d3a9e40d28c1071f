"""A simulated HAProxy appliance, built from real parts: kernel interfaces in network namespaces,
the kernel's own routing, a real OpenSSH server, and stand-ins for its units and Data Plane API.

Two network namespaces. The **lab** holds the user's side: one bridge per site network with that
network's gateway address (a frontend that is the workload network shares the workload bridge);
the runner, its kernels, JupyterLab and, in the end-to-end run, the vCenter simulator run in it,
and reach the appliance at its real management address. The **appliance** namespace has the
interfaces the appliance names ``management``, ``workload`` and ``frontend`` (veth pairs whose
other ends are on the bridges, VMware-style MAC addresses), and the guest
(:mod:`.guest`): PID 1 of its own PID namespace with a private view of the filesystem.

Nothing of the site's networks is configured in the host's namespace, so no traffic to those
private addresses can leave the namespaces made here. Setup that fails half way tears down what it
made; :meth:`ApplianceSimulator.stop` removes every namespace and process (also on SIGINT/SIGTERM of
its owner, through ``atexit`` and the caller's handlers; on SIGKILL the guest's PID namespace dies
with its parent, and the next start sweeps namespaces whose names carry a dead PID).

Needs root, ``openssh-server``, ``iputils-ping``, ``iputils-arping`` (the appliance's Photon iputils carries
arping too), ``haproxy`` and ``openssl``.
"""

from __future__ import annotations

import atexit
import ctypes
import ipaddress
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar

from tkgs_lib.errors import SimulatorUnavailable

from .netns import add_netns, del_netns, ip, namespaces, netns_exec, new_disk, new_name, run_in_netns, sweep
from .scripts import ARTICLE_RELEASE, PLAYED, played

__all__ = ["ApplianceSimulator", "ROLES", "available", "ARTICLE_RELEASE", "PLAYED"]

ROLES = ("management", "workload", "frontend")
T = TypeVar("T")
_running: set["ApplianceSimulator"] = set()
PR_SET_PDEATHSIG = 1


def available() -> Optional[str]:
    """Why the appliance simulator cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the appliance simulator needs root (network namespaces, mounts, sshd)"
    for tool, package in (("/usr/sbin/sshd", "openssh-server"), ("ping", "iputils-ping"), ("arping", "iputils-arping"),
                          ("unshare", "util-linux"), ("ip", "iproute2"), ("/usr/sbin/haproxy", "haproxy"),
                          ("openssl", "openssl")):
        if shutil.which(tool) is None:
            return f"{tool} is missing: apt-get install {package}"
    return None


def _die_with_parent() -> None:
    """In the child before exec: be killed when the process that started us dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(p) for p in listing.read().split()]
    except OSError:
        return []


@atexit.register
def _stop_all() -> None:
    for sim in list(_running):
        sim.stop()


def _vmware_mac(index: int, salt: int) -> str:
    return "00:50:56:%02x:%02x:%02x" % (0x80 | (salt >> 16 & 0x3F), salt >> 8 & 0xFF, (salt + index) & 0xFF)


@dataclass
class ApplianceSimulator:
    """One simulated appliance, configured from the values its OVA properties carry.

    ``properties``: the ``appliance.*``, ``network.*`` and ``loadbalance.*`` values (as the deploy
    stage sends them). ``macs``: role → MAC (VMware-style ones are made up otherwise). ``faults``:
    how it boots broken (see :mod:`.guest`)."""

    properties: dict[str, str]
    macs: dict[str, str] = field(default_factory=dict)
    faults: dict = field(default_factory=dict)
    authorized_keys: list[str] = field(default_factory=list)  # public keys root accepts, besides its password
    start_timeout: float = 60.0
    lab: Optional[str] = None  # an existing lab namespace to join (the demo's); None: one of its own
    release: str = ARTICLE_RELEASE  # the OVA version it was deployed from: its first boot and units are that tag's

    def __post_init__(self) -> None:
        played(self.release)  # ValueError for a release whose scripts were not read
        self._own_lab = self.lab is None
        self.lab = self.lab or new_name("lab")
        self.appliance = new_name("app")
        self.roles = [r for r in ROLES if self.properties.get(f"network.{r}_ip")]
        salt = (os.getpid() * 31 + int(self.appliance.rsplit("-", 1)[1])) & 0xFFFFFF
        self.macs = {role: (self.macs.get(role) or _vmware_mac(i, salt)).lower() for i, role in enumerate(self.roles)}
        self.ca_pem = ""
        self.host_keys: list[str] = []
        self.guestinfo: dict[str, str] = {}  # what its first boot published in the VM's guestinfo (the userdata)
        self._guest: Optional[subprocess.Popen] = None
        self._rebooting = False  # a reboot's shutdown is not a VM powered off (the first-boot player looks on)
        self.disk: Optional[Path] = None  # the appliance's own disk: what its /etc and /root keep across a reboot

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:  # never the passwords
        state = "running" if self._guest else "stopped"
        return f"<ApplianceSimulator {self.management_address} lab={self.lab} {state}>"

    def __enter__(self) -> "ApplianceSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def management_address(self) -> str:
        return self.properties["network.management_ip"].split("/", 1)[0]

    # --- life ---------------------------------------------------------------------------------------

    def start(self) -> "ApplianceSimulator":
        reason = available()
        if reason:
            raise SimulatorUnavailable(reason)
        sweep()
        _running.add(self)
        try:
            self.disk = new_disk()
            self._wire()
            self._boot(first=True)
        except BaseException:
            self.stop()
            raise
        return self

    def reboot(self) -> "ApplianceSimulator":
        """Shut the appliance down as systemd does (its units stopped), then boot it again from its
        disk on a fresh kernel: a new network namespace, the same NICs (MACs), nothing written from
        the properties again. Its host keys and CA stay those of its first boot."""
        self._rebooting = True
        try:
            return self.power_off().power_on()
        finally:
            self._rebooting = False

    def power_off(self) -> "ApplianceSimulator":
        """Its VM powered off: shut down as systemd does, its NICs gone from the lab's bridges (nothing answers
        at its addresses, ARP included); its disk kept for :meth:`power_on`."""
        self._shutdown()
        if self.appliance in namespaces():
            del_netns(self.appliance)
        self._wait_for_nics_gone()
        return self

    def power_on(self) -> "ApplianceSimulator":
        """Its VM powered on again after :meth:`power_off`: booted from its disk on a fresh kernel, with the same
        NICs (MACs); nothing is written from the properties again."""
        try:
            self._wire(lab=False)
            self._boot(first=False)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        """Whether it is powered on: its guest runs, or is being rebooted."""
        return self._guest is not None or self._rebooting

    def _wait_for_nics_gone(self, timeout: float = 10.0) -> None:
        """The kernel destroys a deleted namespace's veth pairs in the background: wait for their lab
        ends to go before the NICs are made again under the same names."""
        deadline = time.monotonic() + timeout
        while any(ip("link", "show", f"v-{role}", netns=self.lab, check=False).returncode == 0 for role in self.roles):
            if time.monotonic() > deadline:
                raise SimulatorUnavailable(f"the appliance's old NICs are still in the lab {self.lab} after {timeout:.0f} s.")
            time.sleep(0.05)

    def _wire(self, lab: bool = True) -> None:
        if self._own_lab and lab:
            add_netns(self.lab)
            ip("link", "set", "lo", "up", netns=self.lab)
        add_netns(self.appliance)
        bridges: dict[str, str] = {}  # network (CIDR) → bridge in the lab
        for role in self.roles:
            address = ipaddress.ip_interface(self.properties[f"network.{role}_ip"])
            network = str(address.network)
            if network not in bridges:
                bridges[network] = self._bridge(role, address)
            peer = f"v-{role}"
            ip("link", "add", role, "address", self.macs[role], "type", "veth", "peer", "name", peer, netns=self.lab)
            ip("link", "set", peer, "master", bridges[network], "up", netns=self.lab)
            ip("link", "set", role, "netns", self.appliance, netns=self.lab)

    def _bridge(self, role: str, address) -> str:
        """The lab's bridge for ``role``'s network, holding its gateway; made unless the lab has it already
        (a joined lab, an appliance rebooted or deployed again)."""
        bridge = f"br-{role}"
        if ip("link", "show", bridge, netns=self.lab, check=False).returncode != 0:
            ip("link", "add", bridge, "type", "bridge", netns=self.lab)
            gateway = self.properties.get(f"network.{role}_gateway")
            if gateway:
                ip("addr", "add", f"{gateway}/{address.network.prefixlen}", "dev", bridge, netns=self.lab)
            ip("link", "set", bridge, "up", netns=self.lab)
        return bridge

    def _boot(self, first: bool) -> None:
        config = {"properties": self.properties, "faults": self.faults, "python": sys.executable,
                  "authorized_keys": self.authorized_keys, "boot": "first" if first else "again",
                  "disk": str(self.disk), "release": self.release,
                  "interfaces": {role: {"mac": self.macs[role]} for role in self.roles}}
        argv = ["ip", "netns", "exec", self.appliance, "unshare", "--mount", "--propagation", "private", "--uts",
                "--pid", "--fork", "--kill-child", "--mount-proc", sys.executable, "-m",
                "tkgs_simulators.appliance.guest"]
        self._guest = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, preexec_fn=_die_with_parent)
        self._guest.stdin.write(json.dumps(config) + "\n")  # the passwords travel here, never in argv
        self._guest.stdin.flush()
        line = self._read_line(self._guest.stdout, self.start_timeout)
        if not line:
            code = self._guest.poll()
            said = self._guest.stderr.read() if code is not None else ""
            raise SimulatorUnavailable(f"the simulated appliance did not boot (exit {code}): "
                                       f"{said.strip()[-1500:] or 'no answer within %.0f s' % self.start_timeout}")
        ready = json.loads(line)
        if not ready.get("ready"):
            raise SimulatorUnavailable(f"the simulated appliance failed to boot: {ready.get('error')}")
        self.ca_pem, self.host_keys = ready["ca"], ready["host_keys"]
        if first:
            self.guestinfo = ready.get("guestinfo", {})
        self._wait_for_sshd()

    def _read_line(self, stream, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([stream], [], [], 0.2)[0]:
                return stream.readline()
            if self._guest.poll() is not None:
                return ""
        return ""

    def _wait_for_sshd(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        probe = [sys.executable, "-c", f"import socket; socket.create_connection(('{self.management_address}', 22), 1)"]
        while time.monotonic() < deadline:
            if netns_exec(self.lab, probe, capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise SimulatorUnavailable(f"sshd on the simulated appliance did not listen on {self.management_address}:22.")

    def stop(self) -> None:
        self._shutdown()
        for name in (self.appliance, self.lab) if self._own_lab else (self.appliance,):
            if name in namespaces():
                del_netns(name)
        if self.disk is not None:
            shutil.rmtree(self.disk, ignore_errors=True)
            self.disk = None
        _running.discard(self)

    def _shutdown(self) -> None:
        """Stop the guest (it stops its units, sshd and the API first) and wait for it."""
        guest, self._guest = self._guest, None
        if guest is not None:
            if guest.poll() is None:
                # unshare ignores SIGTERM while it waits for its child: the guest (PID 1 of the
                # appliance's PID namespace) is told to stop itself, and unshare follows it.
                for pid in _children(guest.pid):
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                try:
                    guest.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    guest.kill()
                    guest.wait()
            for pipe in (guest.stdin, guest.stdout, guest.stderr):
                if pipe:
                    pipe.close()

    # --- the way in ---------------------------------------------------------------------------------

    def in_lab(self, work: Callable[[], T]) -> T:
        """``work()`` in a thread that joined the lab's network namespace."""
        return run_in_netns(self.lab, work)

    def lab_run(self, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        """A command in the lab (the user's side): ``ip netns exec <lab> argv``."""
        return netns_exec(self.lab, argv, **kwargs)

    def lab_popen(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.lab, *argv], **kwargs)

    def appliance_run(self, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        """A command in the appliance's network namespace (not its private filesystem view)."""
        return netns_exec(self.appliance, argv, **kwargs)

    @property
    def guest_pid(self) -> int:
        """The guest's PID 1 as the host sees it (for `nsenter -t` into its private view of the filesystem)."""
        if self._guest is None:
            raise SimulatorUnavailable("the simulated appliance is not running.")
        children = _children(self._guest.pid)  # unshare's child is the guest
        if not children:
            raise SimulatorUnavailable("the simulated appliance's guest is not running.")
        return children[0]

    def kernel_state(self) -> dict[str, object]:
        """What the appliance's kernel holds for its routing: the rules, the routes of every table but
        main (the rtctl_* tables, the local table with its anyip routes), as ``ip -j`` prints them."""
        def shown(*args: str) -> list:
            return json.loads(ip("-j", *args, netns=self.appliance).stdout or "[]")

        rules = shown("rule", "show")
        tables = sorted({str(r["table"]) for r in rules} - {"main", "default"})
        return {"rules": rules, **{f"table {t}": shown("route", "show", "table", t) for t in tables}}

    def known_hosts(self) -> str:
        """known_hosts lines for the appliance's management address."""
        return "".join(f"{self.management_address} {' '.join(k.split()[:2])}\n" for k in self.host_keys)

    def host_key_fingerprint(self, kind: str = "ssh-ed25519") -> str:
        import base64
        import hashlib

        for key in self.host_keys:
            name, blob = key.split()[:2]
            if name == kind:
                digest = hashlib.sha256(base64.b64decode(blob)).digest()
                return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
        raise KeyError(kind)
