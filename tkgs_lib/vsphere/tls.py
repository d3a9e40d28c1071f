"""How vCenter's certificate is trusted: a CA file, a pinned SHA-256 fingerprint, the system's
CA store, or, only as a loud explicit opt-in, nothing.

One :class:`TlsPolicy` serves both clients: :meth:`TlsPolicy.ssl_context` for pyvmomi (and
anything else built on ``ssl``) and :meth:`TlsPolicy.configure` for a ``requests`` session, and
both trust exactly the same certificates. "The system's CA store" is the one OpenSSL was built to
use (:func:`system_context`): neither ``REQUESTS_CA_BUNDLE`` nor ``SSL_CERT_FILE``/``SSL_CERT_DIR``
nor requests' bundled certifi CAs can quietly add to it.
:meth:`TlsPolicy.confirm` makes one handshake up front so that every way trust can fail becomes
one sentence naming the cause, before a password is sent anywhere.

Why not pyvmomi's own ``thumbprint=`` argument: in pyvmomi 9.1 it is only consulted when a
*verifying* context fails, so with an unverified context any certificate passes; with a
verifying one ``SmartConnect``'s version probe fails before the pin is looked at; and after a
fallback it turns the shared context's verification off for later connections. The pinned
context below checks the fingerprint itself on every connection instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import ssl
import warnings
from dataclasses import dataclass, field
from typing import Optional

import requests
from requests.adapters import HTTPAdapter

from ..https import ContextAdapter

from ..errors import ConnectionFailed, SiteError
from ..site.patterns import normalize_thumbprint

log = logging.getLogger(__name__)

__all__ = ["TlsPolicy", "InsecureTlsWarning", "PinMismatch", "normalize_thumbprint", "fingerprint_of",
           "server_fingerprint", "system_context"]


class InsecureTlsWarning(UserWarning):
    """TLS verification is switched off (``vcenter.insecure: true``)."""


class PinMismatch(ssl.SSLCertVerificationError):
    """The server's certificate is not the pinned one."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"certificate fingerprint mismatch: expected {expected}, got {actual}")
        self.expected, self.actual = expected, actual
        self.verify_message = str(self)


def fingerprint_of(der: bytes) -> str:
    """SHA-256 fingerprint of a DER certificate as vCenter shows it: AA:BB:..."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class _PinnedContext(ssl.SSLContext):
    """Accepts exactly the certificate with the pinned fingerprint, checked on every connection."""

    pin: str = ""

    def wrap_socket(self, sock, *args, **kwargs):  # type: ignore[override]
        tls = super().wrap_socket(sock, *args, **kwargs)
        der = tls.getpeercert(binary_form=True)
        if der is None:  # the caller deferred the handshake: do it now, the pin must be checked
            tls.do_handshake()
            der = tls.getpeercert(binary_form=True)
        actual = fingerprint_of(der or b"")
        if actual != self.pin:
            tls.close()
            raise PinMismatch(self.pin, actual)
        return tls


def system_context() -> ssl.SSLContext:
    """A verifying client context that trusts the system's CA store and nothing else.

    The store is where OpenSSL was built to look (on Debian /usr/lib/ssl/cert.pem and certs/, that
    is /etc/ssl/certs); unlike ``ssl.create_default_context()`` this ignores ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR``, so the environment cannot change what is trusted."""
    paths = ssl.get_default_verify_paths()
    cafile = paths.openssl_cafile if os.path.isfile(paths.openssl_cafile) else None
    capath = paths.openssl_capath if os.path.isdir(paths.openssl_capath) else None
    if cafile is None and capath is None:
        raise SiteError(f"vcenter: this machine has no system CA store ({paths.openssl_cafile} and "
                        f"{paths.openssl_capath} are missing); set vcenter.ca_file or vcenter.thumbprint.")
    return ssl.create_default_context(cafile=cafile, capath=capath)


class _FingerprintAdapter(HTTPAdapter):
    """urllib3 compares every connection's certificate with the pinned SHA-256 fingerprint."""

    def __init__(self, fingerprint: str, **kwargs) -> None:
        self._fingerprint = fingerprint
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["assert_fingerprint"] = self._fingerprint
        return super().init_poolmanager(*args, **kwargs)


@dataclass(frozen=True)
class TlsPolicy:
    ca_file: Optional[str] = None
    thumbprint: Optional[str] = None
    insecure: bool = False
    _warned: list = field(default_factory=list, init=False, repr=False, compare=False)  # warn once per policy

    def __post_init__(self) -> None:
        if self.thumbprint and not self.insecure:
            object.__setattr__(self, "thumbprint", normalize_thumbprint(self.thumbprint))
        if self.ca_file and self.thumbprint and not self.insecure:
            raise SiteError("vcenter: set either ca_file or thumbprint, not both: a pinned fingerprint "
                            "already says exactly which certificate to trust.")

    @classmethod
    def from_site(cls, vcenter) -> "TlsPolicy":
        return cls(ca_file=vcenter.ca_file or None, thumbprint=vcenter.thumbprint or None,
                   insecure=bool(vcenter.insecure))

    @property
    def mode(self) -> str:
        """insecure, thumbprint, ca_file or system."""
        if self.insecure:
            return "insecure"
        if self.thumbprint:
            return "thumbprint"
        return "ca_file" if self.ca_file else "system"

    def describe(self) -> str:
        return {"insecure": "nothing (vcenter.insecure: true)",
                "thumbprint": f"the pinned SHA-256 fingerprint {self.thumbprint}",
                "ca_file": f"the CA file {self.ca_file}",
                "system": "the system's CA store"}[self.mode]

    # --- clients ---------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client context for pyvmomi (or http.client) that enforces this policy."""
        if self.insecure:
            self._warn()
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.thumbprint:
            context = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            # The pin replaces chain and name checks: it names one certificate exactly.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.pin = self.thumbprint
            return context
        if self.ca_file:
            try:
                return ssl.create_default_context(cafile=self.ca_file)
            except FileNotFoundError:
                raise SiteError(f"vcenter.ca_file: {self.ca_file} does not exist.") from None
            except (ssl.SSLError, OSError) as exc:
                raise SiteError(f"vcenter.ca_file: {self.ca_file} is not a readable PEM certificate "
                                f"bundle ({exc}).") from None
        return system_context()

    def configure(self, session: requests.Session) -> requests.Session:
        """Make ``session`` enforce this policy, trusting what :meth:`ssl_context` trusts; environment
        variables (REQUESTS_CA_BUNDLE, SSL_CERT_FILE...) and certifi's bundle can't change it."""
        session.trust_env = False
        if self.insecure:
            self._warn()
            session.verify = False
        elif self.thumbprint:
            session.verify = False  # the chain is not checked: the fingerprint is, on every connection
            session.mount("https://", _FingerprintAdapter(self.thumbprint.replace(":", "").lower()))
        elif self.ca_file:
            self.ssl_context()  # a missing or broken file: one sentence now, not a requests traceback later
            session.verify = self.ca_file
        else:
            session.verify = True
            session.mount("https://", ContextAdapter(system_context()))
        return session

    def _warn(self) -> None:
        if self._warned:
            return
        self._warned.append(True)
        ignored = [name for name, value in (("ca_file", self.ca_file), ("thumbprint", self.thumbprint)) if value]
        text = ("TLS verification is OFF for vCenter (vcenter.insecure: true): anyone on the network path can "
                "read the password and act as vCenter. Use this only in a throwaway lab; set vcenter.ca_file "
                "or vcenter.thumbprint instead.")
        if ignored:
            text += f" ({' and '.join('vcenter.' + n for n in ignored)} ignored while insecure is true.)"
        log.warning(text)
        warnings.warn(text, InsecureTlsWarning, stacklevel=3)

    # --- the up-front check ----------------------------------------------------------------------

    def confirm(self, host: str, port: int, timeout: float = 15.0) -> None:
        """One TLS handshake with ``host:port`` under this policy; ConnectionFailed names what failed."""
        context = self.ssl_context()
        where = f"{host}:{port}"
        try:
            with socket.create_connection((host, port), timeout=timeout) as raw:
                with context.wrap_socket(raw, server_hostname=host):
                    return
        except PinMismatch as exc:
            raise ConnectionFailed(
                f"vCenter {where} presents a certificate whose SHA-256 fingerprint does not match the pinned "
                f"vcenter.thumbprint: expected {exc.expected}, got {exc.actual}. If vCenter's certificate was "
                f"replaced, confirm the new fingerprint out of band and update vcenter.thumbprint; otherwise "
                f"something is intercepting the connection.") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectionFailed(self._untrusted_sentence(host, port, exc, timeout)) from None
        except ssl.SSLError as exc:
            raise ConnectionFailed(f"the TLS handshake with vCenter {where} failed ({exc.reason or exc}); "
                                   f"check that vcenter.port is vCenter's HTTPS port.") from None
        except OSError as exc:
            raise ConnectionFailed(unreachable_sentence(host, port, exc)) from None
        except UnicodeError as exc:  # the idna codec: an empty label ("vc..corp") or one over 63 characters
            why = _codec_reason(exc)
            raise ConnectionFailed(f"vcenter.server '{host}' is not a valid host name ({why}): write vCenter's "
                                   f"name as its certificate names it, or its address.") from None

    def _untrusted_sentence(self, host: str, port: int, exc: ssl.SSLCertVerificationError,
                            timeout: float) -> str:
        where = f"{host}:{port}"
        reason = getattr(exc, "verify_message", "") or str(exc)
        try:
            why = f"{reason}; it presents SHA-256 fingerprint {server_fingerprint(host, port, timeout)}"
        except OSError:
            why = reason
        if "hostname mismatch" in reason.lower() or "ip address mismatch" in reason.lower():
            return (f"vCenter {where}'s certificate does not name '{host}' ({why}): set vcenter.server to the "
                    f"name the certificate was issued for.")
        if "expired" in reason.lower():
            return f"vCenter {where}'s certificate has expired ({why}): renew vCenter's certificate."
        if self.mode == "ca_file":
            bundle = f"https://{host}{'' if port == 443 else f':{port}'}/certs/download.zip"
            return (f"vCenter's certificate is not trusted by {self.ca_file} ({why}): set vcenter.ca_file to "
                    f"the PEM bundle of the CA that signed vCenter's certificate (vCenter's root CA is in "
                    f"{bundle}).")
        return (f"vCenter {where}'s certificate is not trusted by the system's CA store ({why}): set "
                f"vcenter.ca_file to the PEM bundle of the CA that signed it, or pin its SHA-256 fingerprint "
                f"in vcenter.thumbprint after confirming it out of band.")


def _codec_reason(exc: UnicodeError) -> str:
    """What the codec said ("label empty or too long"), from the exception objects, not their text.

    socket re-raises the idna codec's error as "encoding with 'idna' codec failed (...)" with the
    codec's own error as its cause; newer Pythons raise a UnicodeEncodeError that has a reason."""
    cause = exc.__cause__ if isinstance(exc.__cause__, UnicodeError) else exc
    if isinstance(cause, (UnicodeEncodeError, UnicodeDecodeError)):
        return cause.reason
    return str(cause.args[0]) if cause.args else type(cause).__name__


def server_fingerprint(host: str, port: int, timeout: float = 15.0) -> str:
    """The SHA-256 fingerprint of the certificate ``host:port`` presents (not verified: for messages only)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return fingerprint_of(tls.getpeercert(binary_form=True) or b"")


def unreachable_sentence(host: str, port: int, exc: BaseException) -> str:
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"vCenter's name '{host}' does not resolve ({exc.strerror}): check vcenter.server and DNS."
    if isinstance(exc, ConnectionRefusedError):
        why = "the connection was refused"
    elif isinstance(exc, (socket.timeout, TimeoutError)):
        why = "the connection timed out"
    else:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return (f"cannot reach vCenter at {where}: {why}; check vcenter.server and vcenter.port, and that this "
            f"machine can reach vCenter's HTTPS port.")
