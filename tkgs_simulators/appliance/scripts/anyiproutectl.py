"""``anyiproutectl.sh``, anyip-routes.service's script, played with real ``ip`` commands.

Read in haproxytech/vmware-haproxy at each tag, ``ansible/roles/vmware/files/var/lib/vmware/anyiproutectl.sh``:
the same file (blob 32fc60b) from v0.1.7 to v0.2.0, never copied. ``up`` is ``up_routes``, ``down``
``down_routes`` (each reads anyip-routes.cfg as it is then).
"""

from __future__ import annotations

from pathlib import Path

from .shell import Script

__all__ = ["AnyIpRouteCtl", "CONFIG_FILE"]

CONFIG_FILE = Path("/etc/vmware/anyip-routes.cfg")


class AnyIpRouteCtl(Script):
    """v0.1.7 to v0.2.0: a local route on ``lo`` per line, added or deleted when the local table lacks or holds it."""

    def present(self, ip: str) -> bool:
        """``ip route show table local | grep -qF "local ${ip%/32} dev lo scope host"`` (the /32 dropped:
        ``ip route`` prints a host route without it), run by bash under the script's ``set -o pipefail``:
        grep -q leaves at its first match, and ``ip``, which writes each route apart, may then die of
        SIGPIPE on its next write, failing the pipeline, so a present route can read as absent (``down``
        then leaves it, ``up`` adds it again and fails with "File exists"), as on the appliance."""
        test = self.sh.run(["bash", "-o", "pipefail", "-c",
                            'ip route show table local | grep -qF "local ${1%/32} dev lo scope host"',
                            self.sh.script, ip])
        return test.returncode == 0

    def down_routes(self) -> None:
        sh = self.sh
        for ip in sh.entries(CONFIG_FILE):
            if not self.present(ip):
                sh.echo2(f"route already removed for {ip}")
            else:
                sh.echo2(f"removing route for {ip}")
                sh.errexit(sh.ip("route", "del", "table", "local", ip, "dev", "lo"))

    def up_routes(self) -> None:
        sh = self.sh
        for ip in sh.entries(CONFIG_FILE):
            if self.present(ip):
                sh.echo2(f"route already exists for {ip}")
            else:
                sh.echo2(f"adding route for {ip}")
                sh.errexit(sh.ip("route", "add", "local", ip, "dev", "lo"))
