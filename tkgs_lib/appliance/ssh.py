"""The real CommandRunner: commands on the appliance over SSH (paramiko), host key checked.

The host key is checked against a known_hosts file, or a pinned fingerprint (``SHA256:...`` as
``ssh-keygen -lf`` prints it). Trust on first use exists only as an explicit option: it records
the key it saw in the run folder's ``known_hosts`` and says so, loudly. Authentication is a
private key file, or the password (from its environment variable or a prompt); every command has
a timeout; the session is closed on every way out (``with SshRunner(...) as ssh``).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import socket
import warnings
from pathlib import Path
from typing import Optional

import paramiko

from ..credentials import plain
from ..errors import ApplianceError, LoginRefused, SessionLost
from .commands import DEFAULT_TIMEOUT, CommandResult, shown_command

log = logging.getLogger(__name__)

__all__ = ["SshRunner", "fingerprint", "public_key_line", "TrustOnFirstUseWarning"]


class TrustOnFirstUseWarning(UserWarning):
    """An SSH host key was accepted because it was the first one seen (haproxy.ssh_trust_on_first_use)."""


def fingerprint(key: paramiko.PKey) -> str:
    """A host key's SHA-256 fingerprint as ``ssh-keygen -lf`` prints it: SHA256:<base64, no padding>."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def public_key_line(key_file: str, comment: str) -> tuple[str, str]:
    """The public half of the private key in ``key_file`` as an authorized_keys line ("<type> <base64>
    <comment>"), and its fingerprint; ApplianceError naming the field when the file cannot be used."""
    try:
        key = paramiko.PKey.from_path(key_file)
    except paramiko.PasswordRequiredException:
        raise ApplianceError(f"haproxy.ssh_key_file ({key_file}) is protected by a passphrase, which tkgs-runbook "
                             f"cannot ask for: give it a key without one (ssh-keygen -t ed25519 -N '').") from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise ApplianceError(f"haproxy.ssh_key_file ({key_file}) cannot be read as a private key ({exc}): give "
                             f"an OpenSSH private key file (ssh-keygen -t ed25519).") from None
    return f"{key.get_name()} {key.get_base64()} {comment}", fingerprint(key)


class _PinnedKey(paramiko.MissingHostKeyPolicy):
    """Accept exactly the host key with the pinned fingerprint."""

    def __init__(self, pin: str) -> None:
        self.pin = pin.strip()

    def missing_host_key(self, client, hostname, key) -> None:
        seen = fingerprint(key)
        if seen != self.pin:
            raise ApplianceError(
                f"the appliance at {hostname} presents SSH host key {seen}, not the pinned {self.pin} "
                f"(haproxy.ssh_host_key): if the appliance was redeployed, confirm the new key on its console and "
                f"update the pin; otherwise something is intercepting the connection. Nothing was sent.")


class _FirstUse(paramiko.MissingHostKeyPolicy):
    """Accept the first key seen, record it, and say so; a later session (a reconnect) must show that
    same key."""

    def __init__(self, record_to: Path) -> None:
        self.record_to = record_to
        self.accepted: dict[str, str] = {}  # host → the fingerprint trusted on first use

    def missing_host_key(self, client, hostname, key) -> None:
        seen = fingerprint(key)
        if hostname in self.accepted:
            if self.accepted[hostname] != seen:
                raise ApplianceError(
                    f"the appliance at {hostname} now presents SSH host key {seen}, not the {self.accepted[hostname]} "
                    f"it presented first in this run: something is intercepting the connection. Nothing was sent.")
            return
        self.record_to.parent.mkdir(parents=True, exist_ok=True)
        with open(self.record_to, "a") as known:
            known.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        self.accepted[hostname] = seen
        text = (f"SSH host key of {hostname} TRUSTED ON FIRST USE (haproxy.ssh_trust_on_first_use: true): "
                f"{key.get_name()} {seen}, recorded in {self.record_to}. Nothing proves it is the "
                f"appliance's: compare it with the appliance's console, then pin it in haproxy.ssh_host_key.")
        log.warning(text)
        warnings.warn(text, TrustOnFirstUseWarning, stacklevel=2)


class _Refuse(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key) -> None:
        raise ApplianceError(
            f"the appliance at {hostname} presents SSH host key {key.get_name()} {fingerprint(key)}, which no "
            f"known_hosts entry vouches for: add it to haproxy.ssh_known_hosts or pin it in haproxy.ssh_host_key "
            f"after confirming it on the appliance's console. Nothing was sent.")


# What a closed or wordless connection means on the appliance, for the two ways paramiko says it.
NOT_SSHD = ("sshd on the appliance is stopping or restarting, or refusing more sessions for now (its MaxStartups), "
            "or what answers on that port is not sshd; try again in a moment")


class SshRunner:
    """Commands on the appliance as ``user``, over one SSH session. Use as a context manager."""

    def __init__(self, host: str, *, port: int = 22, user: str = "root", password: Optional[str] = None,
                 key_file: Optional[str] = None, known_hosts: Optional[str] = None, host_key: Optional[str] = None,
                 trust_on_first_use: bool = False, record_to: Optional[Path] = None,
                 connect_timeout: float = 15.0) -> None:
        if not (known_hosts or host_key or trust_on_first_use):
            raise ApplianceError("the appliance's SSH host key cannot be checked: set haproxy.ssh_known_hosts or "
                                 "haproxy.ssh_host_key (or, knowingly, haproxy.ssh_trust_on_first_use: true).")
        self.host, self.port, self.user = host, port, user
        self._password, self._key_file = password, key_file
        self.connect_timeout = connect_timeout
        self._known_hosts = known_hosts
        if host_key:
            self._policy: paramiko.MissingHostKeyPolicy = _PinnedKey(host_key)
        elif trust_on_first_use:
            self._policy = _FirstUse(record_to or Path("known_hosts"))
        else:
            self._policy = _Refuse()
        self.client = self._new_client()
        self._open = False
        self.execs = 0  # commands run (each an SSH exec: a channel, a request, the answer), for the benchmark

    def _new_client(self) -> paramiko.SSHClient:
        """A client that checks the host key as the site says (again for every session)."""
        client = paramiko.SSHClient()
        if self._known_hosts:
            try:
                client.load_host_keys(self._known_hosts)
            except (OSError, paramiko.SSHException) as exc:
                raise ApplianceError(f"haproxy.ssh_known_hosts ({self._known_hosts}) cannot be read: {exc}.") from None
        client.set_missing_host_key_policy(self._policy)
        return client

    @classmethod
    def for_site(cls, site, network, password: Optional[str], record_to: Path, key: bool = True) -> "SshRunner":
        """An (unconnected) session to the appliance's management address as the site says (``key``: with the
        site's key file, when it names one)."""
        hp = site.haproxy
        return cls(str(network.networks["management"].appliance.ip), user=hp.ssh_user, password=password,
                   key_file=hp.ssh_key_file if key else None, known_hosts=hp.ssh_known_hosts, host_key=hp.ssh_host_key,
                   trust_on_first_use=hp.ssh_trust_on_first_use, record_to=record_to)

    def describe(self) -> str:
        """Who is logged in where, and how the host key was checked."""
        key = self.client.get_transport().get_remote_server_key()
        policy = self._policy
        how = ("the pinned haproxy.ssh_host_key" if isinstance(policy, _PinnedKey) else
               "TRUST ON FIRST USE" if isinstance(policy, _FirstUse) else "known_hosts")
        return f"{self.user}@{self.host}, host key {fingerprint(key)} checked against {how}"

    def _repr_markdown_(self) -> str:
        return f"Logged in over SSH as {self.describe()}" if self._open else repr(self)

    def __repr__(self) -> str:  # never the password
        return f"<SshRunner {self.user}@{self.host}:{self.port} {'open' if self._open else 'closed'}>"

    def __enter__(self) -> "SshRunner":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> "SshRunner":
        where = f"{self.user}@{self.host}:{self.port}"
        try:
            self.client.connect(self.host, port=self.port, username=self.user,
                                password=None if self._password is None else plain(self._password),
                                key_filename=self._key_file, timeout=self.connect_timeout,
                                banner_timeout=self.connect_timeout, auth_timeout=self.connect_timeout,
                                allow_agent=False, look_for_keys=False)
        except ApplianceError:
            self.close()
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            why = self._why_not(where, exc)  # before close: it asks the session how far it got
            refused = (isinstance(exc, paramiko.AuthenticationException) and not self._lost_during_login()
                       and str(exc) != "Authentication timeout.")
            self.close()
            raise (LoginRefused if refused else ApplianceError)(why) from None
        self._open = True
        return self

    def _lost_during_login(self) -> bool:
        """The SSH handshake was done (the host key checked) and the session has ended since: it ended
        while logging in, before the appliance judged the password or key."""
        transport = self.client.get_transport()
        return transport is not None and transport.initial_kex_done and not transport.is_active()

    def _why_not(self, where: str, exc: BaseException) -> str:
        """The sentence for a session that did not open: its cause, as the field meets it."""
        how = f"the key {self._key_file}" if self._key_file else "the password"
        if isinstance(exc, paramiko.BadHostKeyException):
            return (f"the appliance at {self.host} presents SSH host key {fingerprint(exc.key)}, but known_hosts holds "
                    f"{fingerprint(exc.expected_key)} for it: if the appliance was redeployed, confirm the new key on "
                    f"its console and update haproxy.ssh_known_hosts; otherwise something is intercepting. Nothing was "
                    f"sent.")
        if self._lost_during_login():
            # paramiko reports a session that ends while it waits for the answer to a login as an
            # AuthenticationException too ("transport shut down or saw EOF", paramiko/auth_handler.py,
            # AuthHandler.wait_for_response), or as the socket's error: neither is the appliance's refusal.
            cause = (exc.strerror if isinstance(exc, OSError) and exc.strerror else "the connection was closed")
            return (f"the SSH session to {where} was lost during login, before the appliance judged {how} "
                    f"({cause}): sshd on the appliance stopped or restarted meanwhile (the VM rebooting, or sshd "
                    f"restarted), or something on the way (a firewall) cut the connection; try again in a moment.")
        if isinstance(exc, paramiko.AuthenticationException):
            if str(exc) == "Authentication timeout.":  # paramiko's words when no answer came in auth_timeout
                return (f"the appliance did not answer the SSH login for {where} within {self.connect_timeout:g} s, "
                        f"so {how} was never judged: sshd is overloaded or waiting on something (a reverse DNS lookup "
                        f"of this machine, its UseDNS); try again, or check the appliance's load and DNS.")
            return (f"the appliance refused SSH login for {where} with {how}: check the root password (the "
                    f"appliance's appliance.root_pwd) and that root may log in (appliance.permit_root_login).")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return (f"SSH to {where} timed out: check the routing to {self.host}, the management gateway and the "
                    f"management port group's VLAN.")
        if isinstance(exc, OSError):
            if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError) and exc.errors:
                exc = next(iter(exc.errors.values()))  # the socket's own error, behind paramiko's wrapper
            if exc.errno == errno.ECONNREFUSED:
                why = "the connection was refused: sshd is not running on the appliance, or listens elsewhere"
            elif exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                why = "no route to host: nothing holds that address on the management network"
            else:
                why = (exc.strerror or str(exc)).rstrip(".")
            return f"cannot open SSH to {where}: {why}."
        if isinstance(exc, EOFError):  # paramiko's word for a connection reset before its own greeting was sent
            return f"SSH to {where} failed: the connection was closed before the SSH handshake began: {NOT_SSHD}."
        if "protocol banner" in str(exc):  # the peer closed, or spoke something other than SSH
            return f"SSH to {where} failed: no SSH greeting came ({str(exc).rstrip('.')}): {NOT_SSHD}."
        return f"SSH to {where} failed: {exc}."

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT, input: Optional[str] = None) -> CommandResult:
        if not self._open:
            raise ApplianceError(f"the SSH session to {self.host} is not open.")
        self.execs += 1
        try:
            stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
            if input is not None:  # a secret travels in the channel, never in the command's words
                stdin.write(plain(input).encode("utf-8"))
                stdin.flush()
            stdin.channel.shutdown_write()
            out = stdout.read().decode("utf-8", errors="replace")
            err = stderr.read().decode("utf-8", errors="replace")
            status = stdout.channel.recv_exit_status()
        except (socket.timeout, TimeoutError):  # no answer: the command may have run, the session is given up
            self.close()
            raise SessionLost(f"`{shown_command(command)}` on the appliance did not answer within {timeout:.0f} s, so "
                              f"the SSH session to {self.host} was given up", command) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise SessionLost(f"the SSH session to {self.host} was lost while `{shown_command(command)}` ran "
                              f"({str(exc) or type(exc).__name__})", command) from None
        if status == -1:  # the channel closed with no exit status: the session, not the command, ended
            self.close()
            raise SessionLost(f"the SSH session to {self.host} was lost while `{shown_command(command)}` ran "
                              f"(the connection closed before the command's exit status came)", command)
        return CommandResult(command, status, out, err)

    def reconnect(self, attempts: int = 3, wait: float = 2.0) -> "SshRunner":
        """A new session after a lost one, host key checked as the first was; ApplianceError (with the
        last reason) after ``attempts`` tries ``wait`` seconds apart."""
        import time

        self.close()
        self.client = self._new_client()
        last: Optional[ApplianceError] = None
        for attempt in range(attempts):
            try:
                return self.connect()
            except ApplianceError as exc:
                last = exc
                if attempt + 1 < attempts:
                    time.sleep(wait)
        raise ApplianceError(f"reconnecting to {self.host} failed {attempts} times: {last.message if last else ''}")

    @property
    def is_open(self) -> bool:
        """Logged in, and not closed since (a lost session closes itself)."""
        return self._open

    def close(self) -> None:
        """Close the session; safe to call twice."""
        self._open = False
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 (cleanup never hides the error that got us here)
            pass
