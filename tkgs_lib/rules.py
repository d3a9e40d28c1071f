"""What a site's values must be, beyond their types and apart from the address plan.

Run when a site is loaded (their findings join ``Site.findings``), so a mistake in the vCenter
block or a library name is caught by ``validate`` at the desk, not by a stage at 2 a.m. The
address rules live in :mod:`tkgs_lib.network`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .findings import Finding

SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_SHA256 = re.compile(r"^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{64}$")


def host_name_problem(name: str, *, fully_qualified: bool) -> str:
    """Why ``name`` is not a valid (fully qualified) host name under RFC 1123, or ""."""
    labels = name.rstrip(".").split(".")
    if any(not _LABEL.match(label) for label in labels) or len(name) > 253 or labels[-1].isdigit():
        return (f"{name!r} is not a valid host name (RFC 1123): labels are letters, digits and inner hyphens, "
                "1-63 characters, separated by single dots.")
    if fully_qualified and len(labels) < 2:
        return f"{name!r} is not fully qualified."
    return ""


def site_rules(site) -> list[Finding]:
    findings: list[Finding] = []
    error = lambda path, message, fix="": findings.append(Finding.error(path, message, fix))  # noqa: E731

    if site.site and not SITE_NAME.match(site.site):
        error("site", f"{site.site!r} cannot name a run folder.",
              "use letters, digits, '.', '_' and '-' only (up to 63), e.g. lab01.")

    for path, name in _env_fields(site):
        if name and not ENV_NAME.match(name):
            # Never echo the value: a person may have pasted the password itself here.
            error(path, "is not an environment variable name (letters, digits and _; not starting with a digit).",
                  "name the variable that holds the secret, e.g. TKGS_VCENTER_PASSWORD; never the secret itself.")

    hp = site.haproxy
    if hp is not None and hp.hostname:
        problem = host_name_problem(hp.hostname, fully_qualified=True)
        if problem:
            error("haproxy.hostname", problem, "write the appliance's fully qualified name, e.g. haproxy01.test.corp.")
    ports = [("vcenter.port", site.vcenter.port if site.vcenter else None),
             ("haproxy.dataplane_port", hp.dataplane_port if hp else None)]
    for path, port in ports:
        if port is not None and not 1 <= port <= 65535:
            error(path, f"port {port} is out of range.", "use a port from 1 to 65535.")

    vc = site.vcenter
    if vc is not None:
        if vc.server and not _IPV4.match(vc.server):
            problem = host_name_problem(vc.server, fully_qualified=False)
            if problem:
                error("vcenter.server", problem, "write vCenter's host name as its certificate names it, or its address.")
        if vc.thumbprint and not _SHA256.match(vc.thumbprint.strip()):
            sha1 = len(re.sub(r"[^0-9A-Fa-f]", "", vc.thumbprint)) == 40
            error("vcenter.thumbprint",
                  "is a SHA-1 fingerprint; pin the SHA-256 one." if sha1 else
                  "is not a SHA-256 fingerprint (64 hex digits, optionally as AA:BB:...).",
                  "copy the SHA-256 fingerprint of vCenter's certificate, e.g. from "
                  "`openssl s_client -connect HOST:443 </dev/null | openssl x509 -noout -fingerprint -sha256`.")
        if vc.ca_file and vc.thumbprint:
            error("vcenter.thumbprint", "is set together with vcenter.ca_file; it is unclear which to trust.",
                  "keep one: a CA file, or a pinned fingerprint.")
        if vc.insecure:
            if vc.ca_file or vc.thumbprint:
                error("vcenter.insecure", "is true while a CA file or fingerprint is set; insecure would ignore it.",
                      "remove insecure: true, and keep the CA file or fingerprint.")
            else:
                findings.append(Finding.warning(
                    "vcenter.insecure", "TLS verification is OFF: anyone on the path can read the vCenter password.",
                    "set vcenter.ca_file or vcenter.thumbprint and remove insecure: true."))

    libraries = site.content_libraries
    if libraries is not None and libraries.kubernetes is not None and libraries.haproxy is not None:
        if libraries.kubernetes.name and libraries.kubernetes.name.lower() == libraries.haproxy.name.lower():
            error("content_libraries.haproxy.name", f"is also the subscribed library's name ({libraries.haproxy.name!r}).",
                  "give the local library its own name, e.g. HAProxy.")
        url = libraries.kubernetes.subscription_url
        if url:
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                error("content_libraries.kubernetes.subscription_url", "must be an https URL.",
                      "e.g. https://wp-content.vmware.com/v2/latest/lib.json.")
            elif parts.username or parts.password:
                error("content_libraries.kubernetes.subscription_url",
                      "holds credentials; they would be shown in every plan and report.",
                      "remove user:password@ from the URL.")
        if re.match(r"^https?://", libraries.haproxy.ova or ""):
            error("content_libraries.haproxy.ova", "a URL is not supported: the OVA's manifest is checked locally first.",
                  "download the OVA (e.g. haproxy-v0.1.10.ova) and give its path, relative to the site file.")
    return findings


def _env_fields(site):
    if site.vcenter is not None:
        yield "vcenter.password_env", site.vcenter.password_env
    if site.haproxy is not None:
        yield "haproxy.dataplane_password_env", site.haproxy.dataplane_password_env
        yield "haproxy.root_password_env", site.haproxy.root_password_env
