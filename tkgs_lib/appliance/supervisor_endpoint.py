"""The Supervisor's API endpoint through the load balancer: a TLS handshake, verified.

From where it runs (the frontend network, or one routed to it), a TCP connection to the virtual
IP vCenter reports as the Supervisor's ``api_server_cluster_endpoint`` (or to one server behind it,
which must then answer for the virtual IP) and a TLS handshake in which the certificate must be
signed by the CA bundle given (the Supervisor's certificates are issued by vCenter's VMCA, so
vCenter's own CA bundle, the site's ``vcenter.ca_file``, verifies them) and name that address.
HAProxy passes TLS through in TCP mode, so the certificate is the control-plane server's own: its
subject, addresses and fingerprint say which server answered. Nothing is sent after the handshake,
and verification is never turned off.

Every way it can fail is one cause, as the field meets them: the connection never completes (a
return route missing, so the appliance's answer goes elsewhere), refused (nothing bound on the
port), no route (no one answers for the address), closed during the handshake (HAProxy took the
connection but no server behind it did), a certificate not signed by the CA given, naming
another address, or expired.
"""

from __future__ import annotations

import errno
import hashlib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from ..errors import innermost_cause

__all__ = ["Handshake", "handshake", "fingerprint_of", "API_PORT"]

API_PORT = 6443  # the Kubernetes API of the Supervisor
Cause = Literal["", "connect timeout", "handshake timeout", "refused", "unreachable", "closed", "untrusted",
                "other name", "expired", "no CA", "error"]


@dataclass(frozen=True)
class Handshake:
    """One TLS handshake with ``address:port``: what the certificate says, or why there was none
    (``cause`` one of :data:`Cause`, ``detail`` the words of the library or the server)."""

    address: str
    port: int
    tls_version: str = ""
    subject: str = ""  # the certificate's common name
    issuer: str = ""  # its issuer's common name (or organisation)
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    cause: Cause = ""
    detail: str = ""
    name: str = ""  # the name the certificate had to hold, when not the address (a server behind the virtual IP)
    fingerprint: str = ""  # SHA-256 of the certificate, hex

    @property
    def ok(self) -> bool:
        return not self.cause

    @property
    def server_addresses(self) -> tuple[str, ...]:
        """The certificate's addresses but the one it had to name (the virtual IP): the answering server's own."""
        return tuple(a for a in self.ip_addresses if a != (self.name or self.address))

    @property
    def answered_by(self) -> str:
        """Who answered, as its certificate says: ``supervisor-cp-2 (10.64.8.51)``."""
        addresses = ", ".join(self.server_addresses)
        return f"{self.subject or 'a server without a common name'}" + (f" ({addresses})" if addresses else "")


def _name(fields, *keys: str) -> str:
    for key in keys:
        for rdn in fields or ():
            for name, value in rdn:
                if name == key:
                    return str(value)
    return ""


def handshake(address: str, ca_file: Optional[str | Path], *, port: int = API_PORT, name: str = "",
              timeout: float = 10.0) -> Handshake:
    """A TLS handshake with ``address:port`` trusting only the PEM bundle ``ca_file``, the certificate
    checked to name ``name`` (a server behind the virtual IP answers for the virtual IP), else ``address``."""
    def failed(cause: Cause, detail: str) -> Handshake:
        return Handshake(address, port, cause=cause, detail=detail, name=name)

    if not ca_file:
        return failed("no CA", "no CA bundle was given to verify the Supervisor's certificate by")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies and checks names; trusts nothing yet
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        return failed("no CA", f"the CA bundle {ca_file} cannot be read ({getattr(exc, 'reason', None) or exc})")
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except (socket.timeout, TimeoutError):
        return failed("connect timeout", f"no answer to the connection within {timeout:g} s")
    except ConnectionRefusedError:
        return failed("refused", "the connection was refused")
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return failed("unreachable", exc.strerror or str(exc))
        return failed("error", exc.strerror or str(exc))
    try:
        with context.wrap_socket(raw, server_hostname=name or address) as tls:
            cert = tls.getpeercert() or {}
            der = tls.getpeercert(binary_form=True) or b""
            version = tls.version() or ""
    except ssl.SSLCertVerificationError as exc:
        code, said = exc.verify_code, exc.verify_message or str(exc)
        if code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH (an address asked)
            return failed("other name", said)
        if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
            return failed("expired", said)
        return failed("untrusted", said)
    except (socket.timeout, TimeoutError):
        return failed("handshake timeout", f"the connection was accepted but the handshake did not finish within "
                                           f"{timeout:g} s")
    except (ssl.SSLError, ConnectionError, EOFError) as exc:
        return failed("closed", str(getattr(exc, "reason", None) or innermost_cause(exc)) or type(exc).__name__)
    except OSError as exc:
        return failed("error", exc.strerror or str(exc))
    finally:
        raw.close()
    sans = cert.get("subjectAltName", ())
    return Handshake(address, port, version, _name(cert.get("subject"), "commonName"),
                     _name(cert.get("issuer"), "commonName", "organizationName"),
                     tuple(v for k, v in sans if k == "DNS"), tuple(v for k, v in sans if k == "IP Address"),
                     name=name, fingerprint=hashlib.sha256(der).hexdigest())


def fingerprint_of(pem: str) -> str:
    """The SHA-256 of a PEM certificate's DER, hex ("" when it holds none)."""
    try:
        der = ssl.PEM_cert_to_DER_cert(pem.strip())
    except ValueError:
        return ""
    return hashlib.sha256(der).hexdigest()
