"""A stand-in for the appliance's Data Plane API over HTTPS, with basic auth against the
``controller`` userlist (the MD5-crypt hashes first boot writes): ``GET /v2/info``, and, given a
:class:`~.dataplane_configuration.ConfigurationAPI`, the configuration, transaction, runtime and
stats endpoints a load-balancer controller uses, over the appliance's real HAProxy.

Its server certificate is signed by the appliance's CA and names what the real one names (the host
name, localhost, 127.0.0.1 and every interface address). It says it is a stand-in in its ``version``
and in a response header on every answer. Faults for the tests: ``expired`` (an expired
certificate), ``unnamed`` (a certificate that does not name the management address),
``other-body`` (an ``/v2/info`` answer that is not the documented shape).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socketserver
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Sequence
from urllib.parse import parse_qsl, urlsplit

from .haproxy_config import md5_crypt_matches

__all__ = ["make_ca", "issue_server_cert", "load_cert_chain", "serve", "STAND_IN"]

STAND_IN = "tkgs-runbook appliance simulator (Data Plane API stand-in)"
BUILD_DATE = "2020-11-20T15:04:05Z"
VERSION = "2.1.0 (stand-in)"


def make_ca(hostname: str, organization: str = "HAProxy appliance (simulated)") -> tuple[str, str]:
    """A CA certificate and key (PEM), as the appliance makes at first boot when given none."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname or "haproxy.local"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=True,
                                         content_commitment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def issue_server_cert(ca_pem: str, ca_key_pem: str, common_name: str, *, dns_names: Sequence[str] = (),
                      ip_addresses: Sequence[str] = (), expired: bool = False) -> tuple[str, str]:
    """A TLS server certificate and key (PEM) signed by the CA, naming ``dns_names`` and ``ip_addresses``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = ((now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) if expired
                  else (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=365)))
    sans = [x509.DNSName(name) for name in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def load_cert_chain(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """``context.load_cert_chain`` from PEM text: ssl reads only files, so they are memory files
    (memfd), never written to a disk or to the host's /tmp."""
    descriptors = []
    try:
        for name, text in (("cert", cert_pem), ("key", key_pem)):
            fd = os.memfd_create(f"tls-{name}", os.MFD_CLOEXEC)
            descriptors.append(fd)
            os.write(fd, text.encode())
        context.load_cert_chain(f"/proc/self/fd/{descriptors[0]}", f"/proc/self/fd/{descriptors[1]}")
    finally:
        for fd in descriptors:
            os.close(fd)


def _server_cert(ca_pem: str, ca_key_pem: str, hostname: str, addresses: list[str], fault: str) -> tuple[str, str]:
    named = [] if fault == "unnamed" else addresses
    return issue_server_cert(ca_pem, ca_key_pem, hostname, dns_names=[hostname, "localhost"],
                             ip_addresses=["127.0.0.1", *named], expired=fault == "expired")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # http.server would look up the address's name (socket.getfqdn): with no resolver in the
        # appliance's namespace, that costs seconds of DNS timeouts for nothing.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        # A client gone mid-answer is not the stand-in's failure, and nothing reads the guest's
        # stderr after boot (a traceback per hang-up would fill that pipe and block the guest).
        pass


def _authenticated(header: str, users: dict[str, str], known: set[bytes], key: bytes) -> bool:
    """Basic auth checked against the userlist's MD5-crypt hashes; headers that passed are
    remembered by a keyed digest only, so each check does not cost an ``openssl`` run."""
    digest = hmac.new(key, header.encode(), hashlib.sha256).digest()
    if digest in known:
        return True
    scheme, _, token = header.partition(" ")
    if scheme != "Basic":
        return False
    try:
        user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    hashed = users.get(user)
    if hashed is None or not md5_crypt_matches(password, hashed):
        return False
    known.add(digest)
    return True


def serve(address: str, port: int, *, ca_pem: str, ca_key_pem: str, hostname: str, addresses: list[str],
          users: dict[str, str], fault: str = "", configuration=None, cert_pem: str = "",
          key_pem: str = "") -> ThreadingHTTPServer:
    """Start the stand-in on ``address:port`` in a thread; returns the server (``shutdown()`` stops it).
    ``users``: the ``controller`` userlist (name → MD5-crypt hash); ``configuration``: a
    ConfigurationAPI, for the endpoints beyond ``/v2/info``; ``cert_pem`` and ``key_pem``: the server's
    certificate and key (as the appliance keeps them in server.crt and server.key), else one issued here by
    the CA (as ``fault`` asks)."""
    if not (cert_pem and key_pem):
        cert_pem, key_pem = _server_cert(ca_pem, ca_key_pem, hostname, addresses, fault)
    known: set[bytes] = set()
    key = secrets.token_bytes(32)

    class Handler(BaseHTTPRequestHandler):
        server_version = "dataplaneapi-stand-in"

        def log_message(self, *args) -> None:  # quiet: the tests read answers, not access logs
            pass

        def _send(self, status: int, body: Optional[object], headers: dict | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("X-Simulated-By", STAND_IN)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if not _authenticated(self.headers.get("Authorization", ""), users, known, key):
                self._send(401, {"code": 401, "message": "invalid username or password"},
                           {"WWW-Authenticate": 'Basic realm="HAProxy Data Plane API"'})
                return
            url = urlsplit(self.path)
            if url.path == "/v2/info" and method == "GET":
                if fault == "other-body":
                    self._send(200, {"status": "ok", "note": STAND_IN})
                else:
                    self._send(200, {"api": {"build_date": BUILD_DATE, "version": VERSION}, "system": {}})
            elif configuration is not None:
                answer = configuration.handle(method, url.path, dict(parse_qsl(url.query)), body)
                self._send(answer.status, answer.body, answer.headers)
            else:
                self._send(404, {"code": 404, "message": f"path {url.path} was not found"})

        def do_GET(self) -> None:  # noqa: N802 (http.server's names)
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._answer("PUT")

        def do_DELETE(self) -> None:  # noqa: N802
            self._answer("DELETE")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_cert_chain(context, cert_pem, key_pem)  # a certificate that is not its key's: it does not start
    server = _Server((address, port), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="dataplane-stand-in", daemon=True).start()
    return server
