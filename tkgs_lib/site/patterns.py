"""The small shared shapes of site values: names, IPv4 text, host names, fingerprints.

Low in the package on purpose: the site's checks, the address plan, the runner and the TLS code
all use them, and none of those may reach up into another for them.
"""

from __future__ import annotations

import re

from ..errors import SiteError

__all__ = ["SITE_NAME", "ENV_NAME", "IPV4_TEXT", "host_name_problem", "normalize_thumbprint"]

SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IPV4_TEXT = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")  # ASCII digits only: "\d" would take "٢"
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def host_name_problem(name: str, *, fully_qualified: bool) -> str:
    """Why ``name`` is not a valid (fully qualified) host name under RFC 1123, or ""."""
    labels = name.rstrip(".").split(".")
    if any(not _LABEL.match(label) for label in labels) or len(name) > 253 or labels[-1].isdigit():
        return (f"{name!r} is not a valid host name (RFC 1123): labels are letters, digits and inner hyphens, "
                "1-63 characters, separated by single dots.")
    if fully_qualified and len(labels) < 2:
        return f"{name!r} is not fully qualified."
    return ""


# What ``openssl x509 -noout -fingerprint -sha256`` prints before the hex: "sha256 Fingerprint="
# (OpenSSL 3) or "SHA256 Fingerprint=" (1.1); the algorithm is optional, as some tools omit it.
_FINGERPRINT_PREFIX = re.compile(r"^\s*(?:([A-Za-z]+-?\d*)\s+)?Fingerprint\s*=\s*", re.IGNORECASE)


def normalize_thumbprint(text: str) -> str:
    """``text`` as AA:BB:... (64 hex digits); a SiteError says what is wrong with it.

    Accepts the hex with colons, spaces or nothing between the bytes, in either case, and the
    exact line ``openssl x509 -noout -fingerprint -sha256`` prints (``sha256 Fingerprint=AE:...``)."""
    text = text or ""
    algorithm = ""
    prefix = _FINGERPRINT_PREFIX.match(text)
    if prefix:
        algorithm = (prefix.group(1) or "").upper().replace("-", "")
        text = text[prefix.end():]
    digits = re.sub(r"[\s:]", "", text).upper()
    if algorithm == "SHA1" or (not algorithm and len(digits) == 40 and re.fullmatch(r"[0-9A-F]+", digits)):
        raise SiteError("vcenter.thumbprint: this is a SHA-1 fingerprint (40 hex digits); pin vCenter's "
                        "SHA-256 fingerprint (64 hex digits, AA:BB:...) instead.")
    if algorithm not in ("", "SHA256"):
        raise SiteError(f"vcenter.thumbprint: this is a {algorithm} fingerprint; pin vCenter's SHA-256 "
                        f"fingerprint (openssl x509 -noout -fingerprint -sha256) instead.")
    if not re.fullmatch(r"[0-9A-F]{64}", digits):
        not_hex = "" if re.fullmatch(r"[0-9A-F]*", digits) else " that are not all hex digits"
        raise SiteError(f"vcenter.thumbprint: expected a SHA-256 fingerprint (64 hex digits, AA:BB:...), got "
                        f"{len(digits)} characters{not_hex}.")
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2))
