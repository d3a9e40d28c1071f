"""Each way opening an SSH session fails is one ApplianceError sentence, never paramiko's exception.

The peers are sockets of this test on loopback: an endpoint that accepts and closes at once (as a
dying or restarting sshd does) and one that answers with something other than SSH."""

from __future__ import annotations

import socket
import threading

import pytest

from tkgs_lib.appliance.ssh import SshRunner
from tkgs_lib.errors import ApplianceError


def _peer(answer: bytes):
    """A loopback listener that sends ``answer`` to each connection and closes it; (port, stop)."""
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
                if answer:
                    conn.sendall(answer)
                conn.shutdown(socket.SHUT_RDWR)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join()
        listener.close()
    return listener.getsockname()[1], stop


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
