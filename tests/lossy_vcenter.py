"""A stand-in for a lossy network between the runbook and the vCenter simulator (nothing real loses
answers on demand): a TLS proxy on 127.0.0.1 that forwards every HTTP request to the simulator and
its answer back, except for the first request matching a rule (once it is armed), which it either lets
vCenter carry out and then resets the connection instead of answering (``cut``: the answer lost after
vCenter acted; ``die``: and vCenter answers no more, every new connection refused), or answers itself
with an HTTP error without forwarding (``refuse``).

It serves the simulator's own certificate, so a client that trusts the simulator's CA trusts it;
point a site's vcenter.port at :attr:`LossyVCenter.port`. As a reverse proxy does, it rewrites the
simulator's own address in answers (the upload addresses it hands out) to its own.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from typing import Optional

__all__ = ["LossyVCenter", "Rule"]


@dataclass
class Rule:
    match: "bytes | re.Pattern[bytes]"  # found in the request's line or body: a SOAP method, a REST path
    action: str  # "cut", "refuse", or "die": vCenter answers no more (this connection reset, every new one refused)
    status: int = 404
    fired: bool = False
    armed_by: bytes = b""  # the rule waits until a request holding this has been seen ("" : armed at once)
    skip: int = 0  # matching requests let through once armed, before the one it fires on

    def fires_on(self, request: bytes, armed: set) -> bool:
        found = self.match.search(request) if isinstance(self.match, re.Pattern) else self.match in request
        if self.fired or (self.armed_by and self.armed_by not in armed) or not found:
            return False
        if self.skip:
            self.skip -= 1
            return False
        return True


class LossyVCenter:
    def __init__(self, sim, *rules: Rule) -> None:
        self.sim, self.rules = sim, list(rules)
        self.port: Optional[int] = None
        self._server: Optional[socket.socket] = None
        self._threads: list[threading.Thread] = []
        self.seen: list[bytes] = []  # each request's first line, in order
        self._armed: set[bytes] = set()  # the rules' arming requests seen so far
        self.dead = False  # a "die" rule fired

    def __enter__(self) -> "LossyVCenter":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.sim.workdir / "vcsim-cert.pem", self.sim.workdir / "vcsim-key.pem")
        raw = socket.create_server(("127.0.0.1", 0))
        self.port = raw.getsockname()[1]
        self._server = context.wrap_socket(raw, server_side=True)
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except (OSError, ssl.SSLError):
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()

    def _upstream(self) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(self.sim.ca_file))
        return http.client.HTTPSConnection(self.sim.host, self.sim.port, context=context, timeout=600)

    def _serve(self, client: ssl.SSLSocket) -> None:
        upstream = self._upstream()
        reader = client.makefile("rb")
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].split(b" ", 2)
                headers = [tuple(h.split(b":", 1)) for h in lines[1:] if b":" in h]
                length = next((int(v) for k, v in headers if k.strip().lower() == b"content-length"), 0)
                body = reader.read(length) if length else b""
                if self.dead:  # vCenter is gone: a kept-alive connection gets no answer either
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                self.seen.append(lines[0])
                rule = next((r for r in self.rules if r.fires_on(lines[0] + b"\n" + body, self._armed)), None)
                self._armed.update(r.armed_by for r in self.rules if r.armed_by and r.armed_by in lines[0] + body)
                if rule is not None and rule.action == "refuse":
                    rule.fired = True
                    client.sendall(f"HTTP/1.1 {rule.status} Refused by the test\r\nContent-Length: 0\r\n\r\n".encode())
                    continue
                upstream.putrequest(method.decode(), path.decode(), skip_host=True, skip_accept_encoding=True)
                for key, value in headers:
                    upstream.putheader(key.strip().decode(), value.strip().decode("latin-1"))
                upstream.endheaders(body)
                answer = upstream.getresponse()
                # The simulator names itself in upload addresses: as a reverse proxy does, they name the proxy.
                data = answer.read().replace(f"{self.sim.host}:{self.sim.port}".encode(),
                                             f"127.0.0.1:{self.port}".encode())
                if rule is not None:  # "cut": vCenter has acted; its answer never arrives ("die": nor any other)
                    rule.fired = True
                    if rule.action == "die":
                        self.dead = True
                        self._server.close()
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                out = [f"HTTP/1.1 {answer.status} {answer.reason}".encode()]
                out += [f"{k}: {v}".encode("latin-1") for k, v in answer.getheaders()
                        if k.lower() not in ("transfer-encoding", "content-length", "connection")]
                out += [f"Content-Length: {len(data)}".encode(), b"", b""]
                client.sendall(b"\r\n".join(out) + data)
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
            return
        finally:
            upstream.close()
            try:
                client.close()
            except OSError:
                pass
