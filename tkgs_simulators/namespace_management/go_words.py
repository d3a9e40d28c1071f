"""How the Supervisor's services, written in Go, word a request that failed: what the stand-in's
messages carry as their details, as a real Supervisor's messages carry Go's own words.

Go's standard library (go1.19, Debian's golang-go): ``net/http`` wraps a failed request as
``Get "<url>": <cause>`` (``net/url.Error``); a connection that failed is ``dial tcp <host>:<port>:
<cause>`` (``net.OpError``), with the system's words after ``connect:`` (``connection refused``,
``no route to host``, ``network is unreachable``) or ``i/o timeout`` (``net/net.go``); a client's
timeout while it awaits the answer is ``context deadline exceeded (Client.Timeout exceeded while
awaiting headers)``; ``crypto/x509/verify.go`` words a certificate refused: ``x509: certificate signed
by unknown authority``, ``x509: certificate is valid for <names>, not <host>``, ``x509: cannot
validate certificate for <host> because it doesn't contain any IP SANs``, ``x509: certificate has
expired or is not yet valid: current time <t> is after <notAfter>`` (or ``before <notBefore>``).
"""

from __future__ import annotations

import datetime
import errno
import socket
import ssl
from typing import Optional

__all__ = ["dial_failed", "request_failed", "client_timeout", "untrusted", "other_name", "not_valid_now",
           "peer_certificate"]

_CONNECT = {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
            errno.ENETUNREACH: "network is unreachable"}


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def request_failed(url: str, cause: str) -> str:
    """``Get "<url>": <cause>``."""
    return f'Get "{url}": {cause}'


def dial_failed(host: str, port: int, error: Optional[OSError]) -> str:
    """``dial tcp <host>:<port>: ...`` for a connection that did not open (``error`` None: it timed out)."""
    if error is None or isinstance(error, (socket.timeout, TimeoutError)):
        return f"dial tcp {_where(host, port)}: i/o timeout"
    said = _CONNECT.get(getattr(error, "errno", None) or 0)
    if said is None and isinstance(error, ConnectionRefusedError):
        said = "connection refused"
    return f"dial tcp {_where(host, port)}: connect: {said or (error.strerror or str(error)).lower()}"


def client_timeout() -> str:
    return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"


def untrusted() -> str:
    return "x509: certificate signed by unknown authority"


def other_name(host: str, certificate) -> str:
    """Go's words for a certificate that does not name ``host`` (a ``cryptography`` certificate)."""
    from cryptography import x509

    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        addresses = [str(a) for a in names.get_values_for_type(x509.IPAddress)]
        dns = list(names.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        addresses, dns = [], []
    if _is_address(host):
        if not addresses:
            return f"x509: cannot validate certificate for {host} because it doesn't contain any IP SANs"
        valid = addresses
    else:
        valid = dns
    if not valid:
        return f"x509: certificate is not valid for any names, but wanted to match {host}"
    return f"x509: certificate is valid for {', '.join(valid)}, not {host}"


def not_valid_now(certificate, now: Optional[datetime.datetime] = None) -> str:
    """Go's words for a certificate used outside its validity."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    after, before = certificate.not_valid_after_utc, certificate.not_valid_before_utc
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    detail = (f"current time {now:{stamp}} is after {after:{stamp}}" if now > after else
              f"current time {now:{stamp}} is before {before:{stamp}}")
    return f"x509: certificate has expired or is not yet valid: {detail}"


def peer_certificate(host: str, port: int, timeout: float):
    """The certificate ``host:port`` presents, unverified (to word why it was refused), or None."""
    from cryptography import x509

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return x509.load_der_x509_certificate(der) if der else None


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
