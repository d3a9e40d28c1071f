"""The appliance's HAProxy: Debian's real ``haproxy`` in master-worker mode, inside the guest (its
network namespace and private view of the filesystem), started after the network units as
``haproxy.service`` is on the appliance (``anyip-routes.service`` is ``Before=haproxy.service`` at
v0.1.10, ``ansible/roles/vmware/files/etc/systemd/system/anyip-routes.service``).

It dies with the guest: the guest is PID 1 of the appliance's PID namespace, and the kernel kills
every process of a namespace whose PID 1 ends (and waits for them before that PID 1 is gone).

Its output (HAProxy logs to stdout, ``log stdout`` in the release's global) goes to
``/var/log/haproxy.log`` in the guest's private ``/var/log``. A reload is what ``systemctl reload``
does with a master-worker HAProxy: the new file checked with ``haproxy -c``, then SIGUSR2 to the
master, which loads the file again with new workers or, when the new file does not load (a bind
that fails, say), keeps the old workers serving the old one. Unlike ``systemctl reload``, which
returns once the signal is sent, :meth:`HAProxy.reload` waits for the master's verdict
(``Loading success.`` or ``Loading failure!``) and returns HAProxy's own alerts for a failure.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import children
from .haproxy_config import CONFIG_FILE, STATS_SOCKET

__all__ = ["HAProxy", "Verdict", "HAPROXY", "LOG_FILE"]

HAPROXY = "/usr/sbin/haproxy"  # as the appliance's Data Plane API is told: --haproxy-bin=/usr/sbin/haproxy
LOG_FILE = Path("/var/log/haproxy.log")
PID_FILE = "/run/haproxy.pid"
_ALERT = re.compile(r"^\[ALERT\]\s+\((\d+)\) : (.*)$")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Verdict:
    """How one load of the configuration went: ``alerts`` are HAProxy's own lines (those a
    successful load also printed, such as this machine's file limit, left out)."""

    loaded: bool
    alerts: tuple[str, ...]

    def words(self) -> str:
        return " ".join(self.alerts) or "HAProxy gave no reason"


class HAProxy:
    """The master process and the ways to talk to it: ``check``, ``reload``, ``runtime``, ``stop``."""

    def __init__(self, config_file: str = CONFIG_FILE, log_file: Path = LOG_FILE,
                 stats_socket: str = STATS_SOCKET) -> None:
        self.config_file, self.log_file, self.stats_socket = config_file, log_file, stats_socket
        self._master: Optional[subprocess.Popen] = None
        self._usual: set[str] = set()  # alerts every load prints here (normalised), not reasons for a failure

    def start(self, timeout: float = 15.0) -> Verdict:
        """Start the master on the configuration file and wait until its first load is done."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        log = open(self.log_file, "a")
        try:
            self._master = subprocess.Popen([HAPROXY, "-W", "-f", self.config_file, "-p", PID_FILE],
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        verdict = self._verdict(offset, timeout)
        if not verdict.loaded:
            raise RuntimeError(f"HAProxy did not start on {self.config_file}: {verdict.words()}")
        return verdict

    @property
    def pid(self) -> Optional[int]:
        return self._master.pid if self._master else None

    def check(self, path: str) -> subprocess.CompletedProcess:
        """``haproxy -W -f <path> -c``, as Data Plane API 2.1.0 checks a transaction's file in
        master-worker mode (client-native v2.1.0, configuration/transaction.go)."""
        return children.run([HAPROXY, "-W", "-f", path, "-c"], timeout=30)

    def reload(self, timeout: float = 20.0) -> Verdict:
        """SIGUSR2 to the master, and its verdict on the configuration file as it is now."""
        if self._master is None or not _alive(self._master.pid):
            return Verdict(False, ("the HAProxy master process is not running",))
        offset = self.log_file.stat().st_size
        os.kill(self._master.pid, signal.SIGUSR2)
        return self._verdict(offset, timeout)

    def _verdict(self, offset: int, timeout: float) -> Verdict:
        deadline = time.monotonic() + timeout
        master = str(self._master.pid)
        while time.monotonic() < deadline:
            with open(self.log_file, errors="replace") as log:
                log.seek(offset)
                lines = log.read().splitlines()
            for index, line in enumerate(lines):
                if f"({master}) : Loading success." in line or f"({master}) : Loading failure!" in line:
                    alerts = [m.group(2) for m in map(_ALERT.match, lines[:index]) if m and m.group(1) == master]
                    if "Loading success." in line:
                        self._usual = {_DIGITS.sub("N", a) for a in alerts}
                        return Verdict(True, tuple(alerts))
                    return Verdict(False, tuple(a for a in alerts if _DIGITS.sub("N", a) not in self._usual))
            if self._master.poll() is not None:
                return Verdict(False, (f"the HAProxy master exited (status {self._master.returncode})",))
            time.sleep(0.05)
        return Verdict(False, (f"HAProxy gave no verdict within {timeout:.0f} s",))

    def runtime(self, command: str, timeout: float = 5.0) -> str:
        """One command on the stats socket (HAProxy's runtime API), and its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(self.stats_socket)
            connection.sendall(command.encode() + b"\n")
            answer = []
            while chunk := connection.recv(65536):
                answer.append(chunk)
        return b"".join(answer).decode(errors="replace")

    def stop(self, timeout: float = 5.0) -> None:
        master, self._master = self._master, None
        if master is None:
            return
        if master.poll() is None:
            master.terminate()  # SIGTERM: the master stops its workers, then itself
            try:
                master.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
