"""Each way opening an SSH session fails is one ApplianceError sentence, never paramiko's exception.

The peers are sockets of this test on loopback: an endpoint that accepts and closes at once (as a
dying or restarting sshd does), one that answers with something other than SSH, and an SSH server
(paramiko's) that completes the handshake and then, when the password comes, refuses it, drops the
connection (as sshd killed during a login does), or does not answer."""

from __future__ import annotations

import socket
import struct
import threading

import paramiko
import pytest

from tkgs_lib.appliance.ssh import SshRunner, fingerprint
from tkgs_lib.errors import ApplianceError


def loopback_server(handle):
    """A loopback listener that hands each connection to ``handle(conn)``, then closes it; (port, stop)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            with conn:
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join()
        listener.close()
    return listener.getsockname()[1], stop


def _peer(answer: bytes):
    """A loopback listener that sends ``answer`` to each connection and closes it; (port, stop)."""
    def handle(conn: socket.socket) -> None:
        if answer:
            conn.sendall(answer)
        conn.shutdown(socket.SHUT_RDWR)
    return loopback_server(handle)


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 400 Bad Request\r\n\r\n"], ids=["closes at once", "not SSH"])
def test_a_peer_that_closes_or_is_not_ssh_is_one_sentence(tmp_path, answer):
    (tmp_path / "known_hosts").write_text("")
    port, stop = _peer(answer)
    try:
        runner = SshRunner("127.0.0.1", port=port, password="not-used", known_hosts=str(tmp_path / "known_hosts"),
                           connect_timeout=5)
        with pytest.raises(ApplianceError) as failed:
            runner.connect()
    finally:
        stop()
    assert str(failed.value) == (
        f"SSH to root@127.0.0.1:{port} failed: no SSH greeting came (Error reading SSH protocol banner): sshd on "
        f"the appliance is stopping or restarting, or refusing more sessions for now (its MaxStartups), or what "
        f"answers on that port is not sshd; try again in a moment.")
    assert failed.value.__suppress_context__  # no paramiko chain shown


def test_a_connection_reset_before_the_greeting_is_one_sentence(tmp_path, monkeypatch):
    """A reset that lands before paramiko has sent its own greeting makes its send fail, and paramiko
    raises a bare EOFError (paramiko/packet.py, Packetizer.write_all). A CI run met it when the repair's
    reconnect reached an sshd being killed; which of send or read meets the reset is a race on a real
    socket, so here paramiko's connect raises what it raised there."""
    import paramiko

    (tmp_path / "known_hosts").write_text("")

    def reset(*args, **kwargs):
        raise EOFError()

    monkeypatch.setattr(paramiko.SSHClient, "connect", reset)
    runner = SshRunner("127.0.0.1", port=22, password="not-used", known_hosts=str(tmp_path / "known_hosts"))
    with pytest.raises(ApplianceError) as failed:
        runner.connect()
    assert str(failed.value) == (
        "SSH to root@127.0.0.1:22 failed: the connection was closed before the SSH handshake began: sshd on the "
        "appliance is stopping or restarting, or refusing more sessions for now (its MaxStartups), or what answers "
        "on that port is not sshd; try again in a moment.")
    with pytest.raises(ApplianceError, match=r"^reconnecting to 127\.0\.0\.1 failed 2 times: SSH to "
                                             r"root@127\.0\.0\.1:22 failed: the connection was closed before the "
                                             r"SSH handshake began"):
        runner.reconnect(attempts=2, wait=0)


def _ssh_peer(on_password: str):
    """A loopback SSH server whose answer to a password is ``on_password``: "refuse" it, close the
    connection ("close"), reset it ("reset"), or wait longer than the client does ("wait"); (port, the
    host key's fingerprint, stop)."""
    key = paramiko.ECDSAKey.generate()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stopping = threading.Event()
    sessions: list[paramiko.Transport] = []

    class Sshd(paramiko.ServerInterface):
        def __init__(self, conn: socket.socket) -> None:
            self.conn = conn

        def get_allowed_auths(self, username: str) -> str:
            return "password"

        def check_auth_password(self, username: str, password: str) -> int:
            if on_password == "reset":  # a close with nothing lingering sends RST, as a killed process's socket may
                self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if on_password in ("close", "reset"):
                self.conn.close()
            elif on_password == "wait":
                stopping.wait(3)
            return paramiko.AUTH_FAILED

    def serve() -> None:
        conn, _ = listener.accept()
        session = paramiko.Transport(conn)
        session.add_server_key(key)
        sessions.append(session)
        session.start_server(server=Sshd(conn))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join()
        for session in sessions:
            session.close()
        listener.close()
    return listener.getsockname()[1], fingerprint(key), stop


def _login(on_password: str) -> tuple[int, str]:
    port, host_key, stop = _ssh_peer(on_password)
    try:
        runner = SshRunner("127.0.0.1", port=port, password="the-right-one-3f9", host_key=host_key,
                           connect_timeout=1.5)
        with pytest.raises(ApplianceError) as failed:
            runner.connect()
    finally:
        stop()
    assert failed.value.__suppress_context__ and "the-right-one-3f9" not in str(failed.value)
    return port, str(failed.value)


@pytest.mark.parametrize("on_password, cause", [("close", "the connection was closed"),
                                                ("reset", "Connection reset by peer")])
def test_a_session_cut_during_login_is_not_blamed_on_the_password(on_password, cause):
    """sshd killed while it checks the password: paramiko says AuthenticationException ('transport shut
    down or saw EOF') or the socket's error, and the password was never judged."""
    port, said = _login(on_password)
    assert said == (
        f"the SSH session to root@127.0.0.1:{port} was lost during login, before the appliance judged the password "
        f"({cause}): sshd on the appliance stopped or restarted meanwhile (the VM rebooting, or sshd restarted), or "
        f"something on the way (a firewall) cut the connection; try again in a moment.")


def test_a_password_the_appliance_refuses_is_still_called_refused():
    port, said = _login("refuse")
    assert said == (f"the appliance refused SSH login for root@127.0.0.1:{port} with the password: check the root "
                    f"password (the appliance's appliance.root_pwd) and that root may log in "
                    f"(appliance.permit_root_login).")


def test_a_login_that_gets_no_answer_is_not_called_refused():
    port, said = _login("wait")
    assert said == (f"the appliance did not answer the SSH login for root@127.0.0.1:{port} within 1.5 s, so the "
                    f"password was never judged: sshd is overloaded or waiting on something (a reverse DNS lookup of "
                    f"this machine, its UseDNS); try again, or check the appliance's load and DNS.")
