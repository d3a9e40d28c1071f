"""The appliance's certificate authority: a user's own (checked before it is sent), or the one the
appliance publishes after its first boot (``guestinfo.dataplaneapi.cacert``, base64 of a PEM).

The Data Plane API's server certificate is signed by this CA, and it is what Workload Management
needs as the HAProxy "certificate authority chain".
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..errors import ApplianceError

CA_FILE = "haproxy-ca.pem"  # the appliance's CA, as the deploy stage saves it in the run folder

__all__ = ["CA_FILE", "CaCertificate", "Certificate", "check_ca_pair", "ca_pair", "decode_published_ca", "one_line_pem",
           "pem_from_property", "CA_GUESTINFO", "ca_for", "same_certificate"]

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")

CA_GUESTINFO = "guestinfo.dataplaneapi.cacert"  # where the appliance publishes its CA, base64 of the PEM


@dataclass(frozen=True)
class CaCertificate:
    """A CA certificate as a person checks it: subject, validity and SHA-256 fingerprint."""

    pem: str
    subject: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint: str  # SHA-256, AA:BB:...

    @classmethod
    def from_pem(cls, pem: str, where: str) -> "CaCertificate":
        """The (first) certificate in ``pem``, which must be a CA; ApplianceError says what is wrong and where."""
        return cls._checked(_certificates(pem, where)[0], pem, where)

    @classmethod
    def chain_from_pem(cls, pem: str, where: str) -> list["CaCertificate"]:
        """Every certificate of the chain in ``pem``, each a CA, as vCenter takes a "certificate
        authority chain"; ApplianceError, one sentence naming ``where``, when it holds anything else."""
        certs = _certificates(pem, where)
        return [cls._checked(cert, cert.public_bytes(serialization.Encoding.PEM).decode(),
                             where if len(certs) == 1 else f"{where} (certificate {i} of {len(certs)})")
                for i, cert in enumerate(certs, 1)]

    @classmethod
    def _checked(cls, cert: x509.Certificate, pem: str, where: str) -> "CaCertificate":
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise ApplianceError(f"{where} is a certificate for {cert.subject.rfc4514_string()}, but not a CA "
                                 f"(its basic constraints do not say CA:TRUE).")
        digest = cert.fingerprint(hashes.SHA256())
        return cls(pem, cert.subject.rfc4514_string(), cert.not_valid_before_utc, cert.not_valid_after_utc,
                   ":".join(f"{b:02X}" for b in digest))

    def expired(self, now: Optional[datetime.datetime] = None) -> bool:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return not self.not_before <= now <= self.not_after

    def rows(self) -> list[dict]:
        return [{"what": "subject", "value": self.subject},
                {"what": "valid from", "value": f"{self.not_before:%Y-%m-%d %H:%M} UTC"},
                {"what": "valid until", "value": f"{self.not_after:%Y-%m-%d %H:%M} UTC"},
                {"what": "SHA-256 fingerprint", "value": self.fingerprint}]


@dataclass(frozen=True)
class Certificate:
    """A server's certificate as a person compares two: subject, issuer, names, validity and fingerprint."""

    subject: str
    issuer: str
    names: tuple[str, ...]  # its subject alternative names, DNS names then addresses
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint: str  # SHA-256, AA:BB:...
    signature: str  # its signature algorithm, e.g. sha256WithRSAEncryption

    @classmethod
    def from_pem(cls, pem: str, where: str) -> "Certificate":
        """The (first) certificate of ``pem``; ApplianceError naming ``where`` when there is none."""
        return cls.of(_certificates(pem, where)[0])

    @classmethod
    def of(cls, cert: x509.Certificate) -> "Certificate":
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = tuple(sans.get_values_for_type(x509.DNSName)) + tuple(
                str(a) for a in sans.get_values_for_type(x509.IPAddress))
        except x509.ExtensionNotFound:
            names = ()
        signature = cert.signature_algorithm_oid._name  # noqa: SLF001 (cryptography's own name of the OID)
        return cls(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), names, cert.not_valid_before_utc,
                   cert.not_valid_after_utc, ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256())),
                   signature)

    @property
    def days(self) -> int:
        """How many days it is valid for, from its first to its last."""
        return (self.not_after - self.not_before).days

    def validity(self) -> str:
        return f"{self.not_before:%Y-%m-%d %H:%M} to {self.not_after:%Y-%m-%d %H:%M} UTC ({self.days:,} days)"


def same_certificate(one: str, other: str) -> bool:
    """Whether two PEM texts hold the same (first) certificate, whatever their line breaks."""
    try:
        return x509.load_pem_x509_certificate(one.encode()) == x509.load_pem_x509_certificate(other.encode())
    except ValueError:
        return False


def _certificates(pem: str, where: str) -> list[x509.Certificate]:
    """The certificates of ``pem``: PEM, nothing but certificates (a pasted key is named as one, and
    never shown), each readable."""
    kinds = _PEM_BLOCK.findall(pem)
    if not kinds:
        raise ApplianceError(f"{where} is not a PEM certificate: it has no '-----BEGIN CERTIFICATE-----' line.")
    other = next((kind for kind in kinds if kind != "CERTIFICATE"), None)
    if other is not None:
        what = "a private key" if "PRIVATE KEY" in other else f"a PEM {other.lower()}"
        raise ApplianceError(f"{where} holds {what} ('-----BEGIN {other}-----') where only certificates belong.")
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:  # its words name only the PEM framing, and a link
        raise ApplianceError(f"{where} has a '-----BEGIN CERTIFICATE-----' block that is not a certificate: it was "
                             f"cut short or altered when it was copied.") from None


def one_line_pem(pem: str) -> str:
    """A PEM as one property value: the appliance turns spaces back into line breaks (all but those in
    its BEGIN/END/PRIVATE markers), so each line break is written as a space."""
    return " ".join(line.strip() for line in pem.strip().splitlines() if line.strip())


def pem_from_property(value: str) -> str:
    """A PEM as the appliance reads it back from a one-line property, exactly as its first-boot
    script does: every space becomes a line break except one after "BEGIN", "END" or "PRIVATE".
    (So "-----BEGIN RSA PRIVATE KEY-----" would break after "RSA": keys are sent as PKCS#8.)"""
    text = value.strip()
    for word in ("BEGIN", "PRIVATE", "END"):
        text = text.replace(f"{word} ", f"{word}\0")
    return text.replace(" ", "\n").replace("\0", " ") + "\n"


def check_ca_pair(cert_file: str, key_file: str) -> tuple[CaCertificate, str]:
    """The user's own CA: a CA certificate, unexpired, and the private key that belongs to it.

    Returns the certificate and the key's PEM (PKCS#8); ApplianceError is one sentence naming both files."""
    files = f"haproxy.ca_cert_file ({cert_file}) and haproxy.ca_key_file ({key_file})"
    try:
        cert_pem, key_pem = Path(cert_file).read_text(), Path(key_file).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplianceError(f"{files}: cannot be read ({exc}).") from None
    return ca_pair(cert_pem, key_pem, f"haproxy.ca_cert_file ({cert_file})", f"haproxy.ca_key_file ({key_file})",
                   "issue a new CA")


def ca_pair(cert_pem: str, key_pem: str, cert_where: str, key_where: str, renew: str) -> tuple[CaCertificate, str]:
    """A CA certificate, unexpired, and the private key that belongs to it (``renew``: what to do about an expired
    one); the certificate and the key's PEM as PKCS#8. An ApplianceError names where each came from, never the key."""
    ca = CaCertificate.from_pem(cert_pem, cert_where)
    if ca.expired():
        raise ApplianceError(f"{cert_where} is not valid now: it is valid from "
                             f"{ca.not_before:%Y-%m-%d} to {ca.not_after:%Y-%m-%d}; {renew}.")
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ApplianceError(f"{key_where} is not an unencrypted PEM private key "
                             f"({exc}); the appliance cannot use an encrypted key.") from None
    public = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    pem = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, pem) != public.public_bytes(
            serialization.Encoding.DER, pem):
        raise ApplianceError(f"{cert_where} and {key_where} do not belong together: the key is not the "
                             f"certificate's private key.")
    # PKCS#8 ("-----BEGIN PRIVATE KEY-----") whatever form the file has: the appliance rebuilds a
    # one-line PEM's markers only around BEGIN, END and PRIVATE, so "RSA PRIVATE KEY" would break.
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    return ca, pkcs8


def decode_published_ca(value: str, where: str = CA_GUESTINFO) -> CaCertificate:
    """The CA the appliance published: base64 of a PEM, checked to be a CA certificate."""
    try:
        pem = base64.b64decode("".join(value.split()), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApplianceError(f"{where} is not base64 of a PEM certificate ({exc}).") from None
    return CaCertificate.from_pem(pem, where)


def ca_for(folder: Path, collected: Optional[str], ca_cert_file: Optional[str],
           read_published: Callable[[], tuple[Optional[CaCertificate], str]]) -> tuple[Optional[str], str]:
    """The appliance's CA (PEM) and where it came from, in this order: the one the deploy stage collected
    into the run folder (``collected``: its file's name there); what the VM publishes (``read_published``:
    the CA, or None and why not); the site's haproxy.ca_cert_file. (None, why) when none gives one."""
    saved = Path(folder) / (collected or CA_FILE)
    if collected and saved.exists():
        return saved.read_text(), f"the appliance CA the deploy stage saved in {saved}"
    published, why = read_published()
    if published is not None:
        return published.pem, why
    tried = [why]
    if ca_cert_file:
        try:
            ca = CaCertificate.from_pem(Path(ca_cert_file).read_text(), f"haproxy.ca_cert_file ({ca_cert_file})")
            return ca.pem, f"haproxy.ca_cert_file ({ca_cert_file})"
        except (OSError, ApplianceError) as exc:
            tried.append(str(exc))
    return None, (f"no appliance CA: {saved} does not exist (run the deploy stage into this run folder), "
                  + "; ".join(tried) + ".")
