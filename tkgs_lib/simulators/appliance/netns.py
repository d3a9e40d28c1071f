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
           "entered", "new_disk"]

PREFIX = "tkgs-"
_counter = itertools.count(1)
_OWNED = re.compile(rf"^{PREFIX}(lab|app|sup)-(\d+)-\d+$")  # sup: the Supervisor's control plane
_DISK = re.compile(rf"^{PREFIX}disk-(\d+)-")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


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


def sweep() -> list[str]:
    """Delete the namespaces and appliance disks a dead run of the simulator left (their names carry its PID)."""
    removed = []
    for name in namespaces():
        match = _OWNED.match(name)
        if match and not _alive(int(match.group(2))):
            ip("netns", "del", name, check=False)
            removed.append(name)
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
        ip("netns", "add", self.name)
        ip("link", "set", "lo", "up", netns=self.name)
        return self

    def __exit__(self, *exc) -> None:
        ip("netns", "del", self.name, check=False)


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
