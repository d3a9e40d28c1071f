"""Network namespaces, links and the way into them: what the appliance simulator is built from.

Every name made here carries the creating process's PID (``tkgs-lab-<pid>-<n>``), so a later
start can sweep what a killed run left behind (:func:`sweep`), and two test workers never meet.
Nothing of a site's networks is ever configured in the host's own namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from tkgs_lib.errors import SimulatorUnavailable

__all__ = ["ip", "netns_exec", "namespaces", "sweep", "run_in_netns", "PREFIX", "need_root", "new_name", "Namespace",
           "entered", "new_disk", "add_netns", "del_netns", "netns_mounted", "announce"]

PREFIX = "tkgs-"
_counter = itertools.count(1)
_OWNED = re.compile(rf"^{PREFIX}(lab|app|sup)-(\d+)-\d+$")  # sup: the Supervisor's control plane
_DISK = re.compile(rf"^{PREFIX}disk-(\d+)-")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def announce(interface: str, addresses: Sequence[str]) -> None:
    """Gratuitous ARP for each of ``addresses`` from ``interface`` of the current network namespace, as a booting
    VM announces itself (RFC 5227): a neighbour holding one of them at another MAC (the machine that held it
    before) takes the new one at once, rather than after its entry has aged (half a minute and more)."""
    import ipaddress
    import json
    import socket

    shown = json.loads(subprocess.run(["ip", "-j", "link", "show", "dev", interface], capture_output=True,
                                      text=True, check=True).stdout)
    mac = bytes.fromhex(shown[0]["address"].replace(":", ""))
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
        raw.bind((interface, 0))
        for text in addresses:
            address = ipaddress.IPv4Address(text).packed
            arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac + address + b"\x00" * 6 + address
            raw.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)


def need_root() -> None:
    if os.geteuid() != 0:
        raise SimulatorUnavailable("the appliance simulator needs root (network namespaces, mounts, sshd); "
                                   "run as root, as CI does.")


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip`` (in ``netns`` when given); a failure raises SimulatorUnavailable with ip's words."""
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SimulatorUnavailable(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.returncode}")
    return result


def netns_exec(netns: str, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` inside ``netns`` (``ip netns exec``), as subprocess.run takes it."""
    return subprocess.run(["ip", "netns", "exec", netns, *argv], **kwargs)


def namespaces() -> list[str]:
    result = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# iproute2 bind-mounts /run/netns onto itself the first time any namespace is made on a machine, and
# never unmounts it. A run of this simulator that made it removes it again once no namespace is left,
# so a fresh machine stays as it was; a mount that was there before is left alone.
NETNS_DIR = "/run/netns"
_made_mount = False


def netns_mounted() -> bool:
    """Whether /run/netns is a mount point (iproute2's one-time mount)."""
    try:
        with open("/proc/self/mountinfo") as mounts:
            return any(line.split()[4] == NETNS_DIR for line in mounts if len(line.split()) > 4)
    except OSError:
        return False


def add_netns(name: str) -> None:
    """``ip netns add name``, noting whether this run is the one that makes iproute2's /run/netns mount."""
    global _made_mount
    if not namespaces() and not netns_mounted():
        _made_mount = True
    ip("netns", "add", name)


def del_netns(name: str) -> None:
    """``ip netns del name``; the last namespace gone, the /run/netns mount goes too when a run of ours made it."""
    global _made_mount
    ip("netns", "del", name, check=False)
    if _made_mount and not namespaces() and netns_mounted():
        try:
            empty = not os.listdir(NETNS_DIR)
        except OSError:
            empty = False
        if empty and subprocess.run(["umount", NETNS_DIR], capture_output=True).returncode == 0:
            _made_mount = False


def sweep() -> list[str]:
    """Delete the namespaces and appliance disks a dead run of the simulator left (their names carry its PID)."""
    global _made_mount
    removed = []
    for name in namespaces():
        match = _OWNED.match(name)
        if match and not _alive(int(match.group(2))):
            ip("netns", "del", name, check=False)
            removed.append(name)
    if removed and not namespaces() and netns_mounted():
        _made_mount = True  # a dead run of ours made it: it goes with the last namespace of ours
    for disk in Path(tempfile.gettempdir()).glob(f"{PREFIX}disk-*"):
        match = _DISK.match(disk.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(disk, ignore_errors=True)
            removed.append(str(disk))
    return removed


def new_disk() -> Path:
    """A simulated appliance's own disk (mode 0700: it will hold root's password hash, its host keys and
    CA key): ``tkgs-disk-<pid>-<random>`` in the temporary folder, swept when its owner died."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}disk-{os.getpid()}-"))


def run_in_netns(netns: str, work: Callable[[], T]) -> T:
    """``work()`` in a thread that joined ``netns`` (setns through ctypes: Python 3.11 has no
    os.setns); sockets it opens belong to that namespace and stay usable from any thread."""
    result: dict = {}

    def target() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)  # a namespace gone is the caller's error too
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
            finally:
                os.close(fd)
            result["value"] = work()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
            result["error"] = exc

    thread = threading.Thread(target=target, name=f"in-{netns}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def new_name(kind: str) -> str:
    """A namespace name no other run or test worker uses: ``tkgs-<kind>-<pid>-<n>``."""
    return f"{PREFIX}{kind}-{os.getpid()}-{next(_counter)}"


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


class Namespace:
    """A named network namespace of ours (loopback up), removed on exit."""

    def __init__(self, kind: str = "lab") -> None:
        self.name = new_name(kind)

    def __enter__(self) -> "Namespace":
        need_root()
        sweep()
        add_netns(self.name)
        ip("link", "set", "lo", "up", netns=self.name)
        return self

    def __exit__(self, *exc) -> None:
        del_netns(self.name)


@contextlib.contextmanager
def entered(netns: str):
    """The calling thread works in ``netns`` (and the threads and processes it starts), then returns."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(target)
        os.close(original)
