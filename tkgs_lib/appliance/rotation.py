"""The appliance's secrets changed in place: root's password, the Data Plane API's password and its server
certificate, each with a backup and the way back.

Facts from the appliance's own files, at v0.1.10 and v0.2.0 (haproxytech/vmware-haproxy):

* the Data Plane API's user is a line ``  user <name> password <MD5-crypt hash>`` under ``userlist controller``
  in ``/etc/haproxy/haproxy.cfg``, as first boot's ``setHAProxyUserPass`` writes it (``openssl passwd -1``;
  ``ansible/roles/cloudinit/files/var/lib/vmware/ovf-to-cloud-init.sh``); dataplaneapi reads that userlist
  when it starts (``--userlist=${USERLIST}``, ``USERLIST=controller``: ``ansible/roles/haproxy/files/etc/
  systemd/system/dataplaneapi.service`` and ``.../etc/haproxy/dataplaneapi.cfg``), so it is restarted after;
* its certificate is ``/etc/haproxy/server.crt`` and ``server.key`` (dataplaneapi.cfg's TLS_CERTIFICATE and
  TLS_KEY), made at first boot by ``/usr/local/bin/new-cert.sh`` from ``/etc/haproxy/ca.crt`` and ``ca.key``
  (``userdata.txt``'s runcmd: ``-3 "127.0.0.1,<each interface's IPv4 address>" -4 "localhost" <host name>``),
  valid 3,650 days by default (``TLS_DEFAULT_DAYS``, ``ansible/roles/pki/files/usr/local/bin/new-cert.sh``);
  run again without ``-n`` it replaces them, from the same CA, so what trusts the CA (the Supervisor) needs
  no change.

The hash of a new Data Plane API password is made on the appliance, as first boot makes it, from the password
given on the command's standard input; root's goes to ``chpasswd`` the same way: no secret is ever a word of a
command, so none reaches the ledger, a process list or a log. The hash never leaves the appliance: the
facts read only the userlist's user names, and a rollback puts the old line back from the backup there.
"""

from __future__ import annotations

import datetime
import shlex
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..credentials import plain
from ..errors import ApplianceError
from .ca import Certificate, same_certificate
from .commands import CommandRunner, Fact, gather_many, run_change, value_or_problem

__all__ = ["HAPROXY_CONFIG", "SERVER_CRT", "SERVER_KEY", "CA_CRT", "CA_KEY", "NEW_CERT", "DATAPLANE_UNIT",
           "SecretFacts", "gather_secret_facts", "RotationOps"]

HAPROXY_CONFIG = "/etc/haproxy/haproxy.cfg"
SERVER_CRT, SERVER_KEY = "/etc/haproxy/server.crt", "/etc/haproxy/server.key"
CA_CRT, CA_KEY = "/etc/haproxy/ca.crt", "/etc/haproxy/ca.key"
NEW_CERT = "/usr/local/bin/new-cert.sh"
DATAPLANE_UNIT = "dataplaneapi"

# Each user of the controller userlist: its name only (the hash stays on the appliance).
_USERS = ("awk '/^userlist controller/ {inside = 1; next} /^[^ \\t]/ {inside = 0} "
          f"inside && $1 == \"user\" {{print $2}}' {HAPROXY_CONFIG}")


def _present(path: str, test: str = "-s") -> Fact:
    return Fact(f"whether {path} is there", f"test {test} {path} && echo present || echo missing",
                lambda text: text.strip() == "present")


SECRET_FACTS: dict[str, Fact] = {
    "userlist": Fact(f"the users of the controller userlist in {HAPROXY_CONFIG}", _USERS,
                     lambda text: text.split()),
    "server certificate": Fact(f"the Data Plane API's certificate {SERVER_CRT}", f"cat {SERVER_CRT}",
                               lambda text: Certificate.from_pem(text, SERVER_CRT) if text.strip() else None),
    "CA": Fact(f"the appliance's CA {CA_CRT}", f"cat {CA_CRT}", lambda text: text if text.strip() else ""),
    "CA key": _present(CA_KEY),
    "new-cert.sh": _present(NEW_CERT, "-x"),
    "dataplaneapi": Fact("the Data Plane API's unit", f"systemctl is-active {DATAPLANE_UNIT}",
                         lambda text: text.strip().splitlines()[-1] if text.strip() else "unknown", ok_exit=(0, 3)),
}


@dataclass
class SecretFacts:
    """What the appliance holds of its secrets' places, read over SSH; None for a fact that could not be read."""

    users: Optional[list[str]] = None  # the controller userlist's user names
    server_certificate: Optional[Certificate] = None
    ca_pem: Optional[str] = None  # /etc/haproxy/ca.crt ("" when missing)
    ca_key_present: Optional[bool] = None
    new_cert_present: Optional[bool] = None
    dataplane_state: Optional[str] = None  # systemctl is-active dataplaneapi
    problems: dict[str, str] = field(default_factory=dict)


def gather_secret_facts(runner: CommandRunner) -> SecretFacts:
    """:data:`SECRET_FACTS` in one exec."""
    read = gather_many(runner, SECRET_FACTS)
    facts = SecretFacts()

    def value(name: str):
        return value_or_problem(read, name, facts.problems)

    facts.users, facts.server_certificate, facts.ca_pem = value("userlist"), value("server certificate"), value("CA")
    facts.ca_key_present, facts.new_cert_present = value("CA key"), value("new-cert.sh")
    facts.dataplane_state = value("dataplaneapi")
    return facts


class RotationOps:
    """The changes, each with a dated backup on the appliance and a way back; every command through
    :func:`~tkgs_lib.appliance.commands.run_change` (the ledger)."""

    def __init__(self, runner: CommandRunner, now: Callable[[], datetime.datetime] = datetime.datetime.now) -> None:
        self.runner, self.now = runner, now

    def _run(self, command: str, doing: str, input: Optional[str] = None, timeout: float = 60):
        result = run_change(self.runner, command, timeout=timeout, input=input)
        if not result.ok:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise ApplianceError(f"{doing} failed: `{command.splitlines()[0].lstrip('# ')}` exited "
                                 f"{result.exit_status}" + (f": {said[-1]}" if said else "."))
        return result

    def _backup(self, path: str) -> str:
        backup = f"{path}.tkgs-{self.now():%Y%m%d-%H%M%S}.bak"
        self._run(f"cp -p {path} {backup}", f"backing up {path}")
        return backup

    def restart_dataplane(self) -> None:
        """``systemctl restart dataplaneapi``: it reads its userlist and certificate again."""
        self._run(f"systemctl restart {DATAPLANE_UNIT}", "restarting the Data Plane API")

    # --- the Data Plane API's password -------------------------------------------------------------

    def set_dataplane_password(self, user: str, password: str) -> str:
        """The user's line of the controller userlist given the MD5-crypt hash of ``password`` (made on the
        appliance, ``openssl passwd -1`` as first boot does, from standard input); returns the backup."""
        backup = self._backup(HAPROXY_CONFIG)
        quoted = shlex.quote(user)
        self._run(f"# set the Data Plane API user {user}'s password in {HAPROXY_CONFIG} (userlist controller), the "
                  f"password on standard input\nset -e\nIFS= read -r password\n"
                  f"HASH=$(printf '%s\\n' \"$password\" | openssl passwd -1 -stdin)\nexport HASH\n"
                  f"awk -v user={quoted} '/^userlist controller/ {{inside = 1}} /^[^ \\t]/ && !/^userlist controller/ "
                  f"{{inside = 0}} inside && $1 == \"user\" && $2 == user && $3 == \"password\" "
                  f"{{print \"  user \" user \" password \" ENVIRON[\"HASH\"]; found = 1; next}} {{print}} "
                  f"END {{exit !found}}' {HAPROXY_CONFIG} > {HAPROXY_CONFIG}.tkgs-new\n"
                  f"cat {HAPROXY_CONFIG}.tkgs-new > {HAPROXY_CONFIG} && rm -f {HAPROXY_CONFIG}.tkgs-new",
                  f"setting the Data Plane API user {user}'s password", input=plain(password) + "\n")
        return backup

    def put_dataplane_password_back(self, user: str, backup: str) -> None:
        """The user's line as ``backup`` holds it (its old hash, which never leaves the appliance), and the API
        restarted on it."""
        quoted = shlex.quote(user)
        find = (f"awk -v user={quoted} '/^userlist controller/ {{inside = 1; next}} /^[^ \\t]/ {{inside = 0}} "
                f"inside && $1 == \"user\" && $2 == user {{print; exit}}' {backup}")
        self._run(f"# put the Data Plane API user {user}'s password back in {HAPROXY_CONFIG} from {backup}\nset -e\n"
                  f"LINE=$({find})\n[ -n \"$LINE\" ]\nexport LINE\n"
                  f"awk -v user={quoted} '/^userlist controller/ {{inside = 1}} /^[^ \\t]/ && !/^userlist controller/ "
                  f"{{inside = 0}} inside && $1 == \"user\" && $2 == user {{print ENVIRON[\"LINE\"]; next}} {{print}}' "
                  f"{HAPROXY_CONFIG} > {HAPROXY_CONFIG}.tkgs-new\n"
                  f"cat {HAPROXY_CONFIG}.tkgs-new > {HAPROXY_CONFIG} && rm -f {HAPROXY_CONFIG}.tkgs-new",
                  f"putting the Data Plane API user {user}'s password back")
        self.restart_dataplane()

    # --- root's password ---------------------------------------------------------------------------

    def set_root_password(self, password: str) -> None:
        """root's password, through ``chpasswd`` (``root:<password>`` on its standard input)."""
        self._run("# set root's password (chpasswd, the password on standard input)\nchpasswd",
                  "setting root's password", input="root:" + plain(password) + "\n")

    # --- the Data Plane API's certificate ----------------------------------------------------------

    def reissue_certificate(self, hostname: str, addresses: list[str]) -> dict[str, str]:
        """Back up server.crt and server.key, run new-cert.sh without ``-n`` (so it replaces them) from the same
        CA with first boot's names (127.0.0.1 and ``addresses``, localhost, ``hostname``), and restart the API;
        returns each file's backup."""
        backups = {path: self._backup(path) for path in (SERVER_CRT, SERVER_KEY)}
        ips = ",".join(["127.0.0.1", *addresses])
        self._run(f"{NEW_CERT} -1 {CA_CRT} -2 {CA_KEY} -3 {shlex.quote(ips)} -4 localhost {shlex.quote(hostname)} "
                  f"/etc/haproxy", "reissuing the Data Plane API's certificate with new-cert.sh", timeout=120)
        self.restart_dataplane()
        return backups

    def put_certificate_back(self, backups: dict[str, str]) -> None:
        for path, backup in backups.items():
            self._run(f"cp -p {backup} {path}", f"putting {backup} back")
        self.restart_dataplane()

    def read_certificate(self) -> Certificate:
        """What server.crt holds now."""
        result = self.runner.run(f"cat {SERVER_CRT}", 30)
        if not result.ok:
            raise ApplianceError(f"{SERVER_CRT} cannot be read: {(result.stderr or '').strip() or 'no output'}.")
        return Certificate.from_pem(result.stdout, SERVER_CRT)

    def serves(self, presented_pem: str) -> bool:
        """Whether server.crt holds the certificate the API presented."""
        result = self.runner.run(f"cat {SERVER_CRT}", 30)
        return result.ok and same_certificate(result.stdout, presented_pem)
