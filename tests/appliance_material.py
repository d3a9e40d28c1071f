"""Test material for the deploy stage: appliance OVAs and CA files.

The OVA's descriptor is the appliance's real one where ../shared/reference/ovf is present beside
the checkout (as on a developer's machine), else the generated one built from the same facts:
the project's tests never need ../shared.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from tkgs_simulators.ova import DEFAULT_DISK_SIZE, build_ova, haproxy_descriptor

REFERENCE_OVF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ovf"


def descriptor_text(version: str = "v0.1.10") -> str:
    real = REFERENCE_OVF / f"haproxy-{version}.ovf"
    return real.read_text() if real.exists() else haproxy_descriptor(f"haproxy-{version}", version=version)


def appliance_ova(folder: Path, version: str = "v0.1.10", descriptor: str | None = None) -> Path:
    """An OVA of the appliance's shape (its real descriptor when at hand) with a 2 MiB generated disk."""
    name = f"haproxy-{version}"
    return build_ova(folder / f"{name}.ova", name=name, version=version, disk_size=DEFAULT_DISK_SIZE,
                     descriptor=descriptor or descriptor_text(version))


def write_ca(folder: Path, *, ca: bool = True, expired: bool = False, pkcs1: bool = False,
             name: str = "tkgs-test-ca") -> tuple[Path, Path]:
    """A CA certificate and its private key as PEM files (``ca=False``: a leaf certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) if expired else \
        (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=365))
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    form = serialization.PrivateFormat.TraditionalOpenSSL if pkcs1 else serialization.PrivateFormat.PKCS8
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()))
    return cert_path, key_path
