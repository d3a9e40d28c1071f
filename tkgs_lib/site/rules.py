"""What a site's values must be, beyond their types and apart from the address plan.

Run when a site is loaded (their findings join ``Site.findings``), so a mistake in the vCenter
block or a library name is caught by ``validate`` at the desk, not by a stage at 2 a.m. The
address rules live in :mod:`tkgs_lib.site.network`.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlsplit

from ..credentials import secret_env_fields
from ..errors import SiteError
from ..findings import Finding
from .characters import escaped_in_inventory, invisible_character, shown
from .patterns import ENV_NAME, IPV4_TEXT, SITE_NAME, host_name_problem, normalize_thumbprint

VSPHERE_NAME_MAX = 80  # vSphere's limit on an inventory object's name (a VM, a port group, a folder)
POLICY_NAME_MAX = 80  # documented on PbmCapabilityProfileCreateSpec.name (the Storage Policy API)
# vCenter documents no limit for tag, category, library and library item names; past this bound a
# name is a paste gone wrong, not a name (and would be sent to vCenter in every request).
UNDOCUMENTED_NAME_MAX = 256


def site_rules(site) -> list[Finding]:
    """Every check of this module, in file order."""
    return [*_check_characters(site), *_check_names(site), *_check_vcenter(site), *_check_appliance(site),
            *_check_libraries(site), *_check_vsphere_names(site), *_check_inventory_names(site)]


def _text_values(node, path: str = ""):
    """(field path, text) of every text value of the site, lists' items included."""
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            if not f.metadata.get("internal"):
                yield from _text_values(getattr(node, f.name), f"{path}.{f.name}" if path else f.name)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _text_values(item, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def _check_characters(site):
    """No value holds what a screen hides or misshows (see characters.py); `*_env` names have their own rule."""
    for path, text in _text_values(site):
        problem = None if path.endswith("_env") else invisible_character(text)
        if problem:
            yield Finding.error(path, f"{problem}.", "write the value with visible characters and plain spaces only.")


def _inventory_names(site):
    """(field path, name) of every inventory object vCenter is asked for by name or path."""
    vc, hp, nets = site.vcenter, site.haproxy, site.networks
    if vc is not None:
        yield from ((f"vcenter.{f}", getattr(vc, f)) for f in ("datacenter", "cluster", "distributed_switch"))
        yield from ((f"vcenter.datastores[{i}]", name) for i, name in enumerate(vc.datastores or ()))
    if nets is not None:
        for role in ("management", "workload", "frontend"):
            network = getattr(nets, role, None)
            if network is not None:
                yield f"networks.{role}.portgroup", network.portgroup
    if hp is not None:
        yield from ((f"haproxy.{f}", getattr(hp, f)) for f in ("vm_name", "resource_pool", "datastore"))
    if site.content_libraries is not None:
        yield "content_libraries.datastore", site.content_libraries.datastore


def _check_inventory_names(site):
    for path, name in _inventory_names(site):
        problem = escaped_in_inventory(name) if isinstance(name, str) and name else None
        if problem:
            yield Finding.error(path, f"{problem}.", "name the object without '/', '\\' and '%' (rename it in "
                                                     "vCenter if it has such a name).")
    folder = site.haproxy.vm_folder if site.haproxy is not None else None
    if folder:
        for part in folder.strip("/").split("/"):
            problem = "has an empty folder name (two '/' in a row)" if not part else (
                escaped_in_inventory(part) if part in (".", "..") or any(c in part for c in "\\%") else None)
            if problem:
                yield Finding.error("haproxy.vm_folder", f"{folder!r}: {problem}.",
                                    "write the folder's path under the datacenter's VM folder, names separated by "
                                    "single '/', e.g. tanzu/lb.")
                break


def _check_vsphere_names(site):
    """Names vSphere would refuse (or cut) only when the stage runs: caught at the desk instead."""
    inventory, undocumented = [], []
    vc = site.vcenter
    if vc is not None:
        inventory += [(f"vcenter.{field}", getattr(vc, field)) for field in ("datacenter", "cluster",
                                                                             "distributed_switch")]
        inventory += [("vcenter.datastores", name) for name in vc.datastores or () if isinstance(name, str)]
    if site.networks is not None:
        inventory += [(f"networks.{role}.portgroup", getattr(getattr(site.networks, role, None), "portgroup", ""))
                      for role in ("management", "workload", "frontend")]
    if site.haproxy is not None:
        inventory += [("haproxy.vm_name", site.haproxy.vm_name), ("haproxy.resource_pool", site.haproxy.resource_pool),
                      ("haproxy.datastore", site.haproxy.datastore)]
        inventory += [("haproxy.vm_folder", part) for part in (site.haproxy.vm_folder or "").split("/")]
    if site.storage is not None:
        undocumented += [("storage.tag_category", site.storage.tag_category), ("storage.tag", site.storage.tag)]
        yield from _too_long("storage.policy", site.storage.policy, POLICY_NAME_MAX,
                             "vSphere names a storage policy with at most")
    libraries = site.content_libraries
    if libraries is not None:
        undocumented += [("content_libraries.kubernetes.name", getattr(libraries.kubernetes, "name", "")),
                         ("content_libraries.haproxy.name", getattr(libraries.haproxy, "name", "")),
                         ("content_libraries.haproxy.item", getattr(libraries.haproxy, "item", ""))]
        inventory.append(("content_libraries.datastore", libraries.datastore))
    for path, name in inventory:
        yield from _too_long(path, name, VSPHERE_NAME_MAX, "vSphere names an object with at most")
    for path, name in undocumented:
        yield from _too_long(path, name, UNDOCUMENTED_NAME_MAX,
                             "vCenter documents no limit here, but tkgs-runbook takes at most")


def _too_long(path: str, name, limit: int, says: str):
    if isinstance(name, str) and len(name) > limit:
        yield Finding.error(path, f"is {len(name):,} characters long; {says} {limit}.",
                            f"use a name of at most {limit} characters.")


def _check_names(site):
    if site.site and len(site.site) > 63:
        yield Finding.error("site", f"is {len(site.site)} characters long; a site name has at most 63.",
                            "use a short name, e.g. lab01.")
    elif site.site and not SITE_NAME.match(site.site):
        yield Finding.error("site", f"{site.site!r} cannot name a run folder.",
                            "use letters, digits, '.', '_' and '-' only (up to 63), e.g. lab01.")
    for path, name in secret_env_fields(site):
        if name and not ENV_NAME.match(name):
            # Never echo the value: a person may have pasted the password itself here.
            yield Finding.error(
                path, "is not an environment variable name (letters, digits and _; not starting with a digit).",
                "name the variable that holds the secret, e.g. TKGS_VCENTER_PASSWORD; never the secret itself.")


def _check_vcenter(site):
    vc = site.vcenter
    if vc is None:
        return
    if vc.server and ":" in vc.server and "://" not in vc.server:
        yield Finding.error("vcenter.server", f"{vc.server!r} is an IPv6 address, which tkgs-runbook does not support "
                                              f"(nor does the appliance).",
                            "write vCenter's host name, or its IPv4 address.")
    elif vc.server and ("://" in vc.server or "/" in vc.server):
        host = _host_of(vc.server)
        yield Finding.error("vcenter.server", f"{vc.server!r} is a URL; the server is a host name only.",
                            f"write just the host, e.g. {host or 'vcenter.test.corp'} (and its port in vcenter.port).",
                            (host,) if host else ())
    elif vc.server and not IPV4_TEXT.match(vc.server):
        problem = host_name_problem(vc.server, fully_qualified=False)
        if problem:
            yield Finding.error("vcenter.server", problem,
                                "write vCenter's host name as its certificate names it, or its address.")
    if not 1 <= (vc.port or 443) <= 65535:
        yield Finding.error("vcenter.port", f"port {vc.port} is out of range.", "use a port from 1 to 65535.")
    for i, name in enumerate(vc.datastores):
        if "," in name:
            yield Finding.error(f"vcenter.datastores[{i}]", f"{name!r} looks like several datastores in one value.",
                                "write a YAML list, one datastore per item: [vsanDatastore, nfs01].")
    if vc.thumbprint:
        try:
            normalize_thumbprint(vc.thumbprint)
        except SiteError as exc:
            yield Finding.error("vcenter.thumbprint", exc.message.removeprefix("vcenter.thumbprint: "),
                                "paste the output of `openssl x509 -noout -fingerprint -sha256` on vCenter's "
                                "certificate, confirmed out of band.")
    if vc.ca_file and not vc.thumbprint and not vc.insecure:
        problem = _pem_bundle_problem(vc.ca_file)
        if problem:
            yield Finding.error("vcenter.ca_file", problem,
                                "give the PEM bundle of the CA that signed vCenter's certificate (its root CA is in "
                                "https://<vcenter>/certs/download.zip).")
    if vc.ca_file and vc.thumbprint:
        yield Finding.error("vcenter.thumbprint", "is set together with vcenter.ca_file; it is unclear which to trust.",
                            "keep one: a CA file, or a pinned fingerprint.")
    if vc.insecure and (vc.ca_file or vc.thumbprint):
        yield Finding.error("vcenter.insecure", "is true while a CA file or fingerprint is set; insecure would ignore it.",
                            "remove insecure: true, and keep the CA file or fingerprint.")
    elif vc.insecure:
        yield Finding.warning("vcenter.insecure", "TLS verification is OFF: anyone on the path can read the vCenter "
                                                  "password.", "set vcenter.ca_file or vcenter.thumbprint and remove "
                                                               "insecure: true.")


def _host_of(url: str) -> str:
    """The host a URL names, when the server rule takes it (an IPv4 address or a host name); else ""."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a malformed URL (an unclosed '[')
        return ""
    if not host or invisible_character(host) or ":" in host:
        return ""
    return host if IPV4_TEXT.match(host) or not host_name_problem(host, fully_qualified=False) else ""


def _pem_bundle_problem(path: str) -> str:
    """Why ``path`` is not a readable PEM bundle of certificates, or ""."""
    import os
    import ssl

    if not os.path.exists(path):
        return f"{path} does not exist."
    if not os.path.isfile(path):
        return f"{path} is not a file."
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        return f"{path} is not a PEM bundle of CA certificates ({getattr(exc, 'reason', None) or exc})."
    return ""


# What the appliance's first boot writes the Data Plane API user into: v0.1.10's ovf-to-cloud-init.sh,
# setHAProxyUserPass, appends `user <name> password <hash>` below `userlist controller` of
# /etc/haproxy/haproxy.cfg with `sed -e '/^userlist controller/a\  \user '"${user}"'...'`: a space or `#`
# breaks HAProxy's line, a backslash is eaten by sed, a line break writes a line of its own.
DATAPLANE_USER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LOGIN_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")  # POSIX's portable user names, as sshd and Photon take them
SHA1_FINGERPRINT = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){19}$")


def _check_appliance(site):
    hp = site.haproxy
    if hp is None:
        return
    if not DATAPLANE_USER.match(hp.dataplane_username or ""):
        yield Finding.error(
            "haproxy.dataplane_username",
            f"{shown(hp.dataplane_username)} cannot be carried safely into the appliance's HAProxy configuration: its "
            f"first boot writes the user (loadbalance.haproxy_user) verbatim into the line `user <name> password "
            f"<hash>` of haproxy.cfg's userlist, where a space or '#' breaks the line, sed eats a backslash and a "
            f"line break writes a line of its own.",
            "use letters, digits, '.', '_' and '-' only (at most 64), e.g. admin.")
    if hp.ssh_user and not LOGIN_NAME.match(hp.ssh_user):
        yield Finding.error("haproxy.ssh_user", f"{shown(hp.ssh_user)} is not a user name the appliance can have.",
                            "write a login name: lower-case letters, digits, '_', '.' and '-', e.g. root.")
    if hp.hostname:
        problem = host_name_problem(hp.hostname, fully_qualified=True)
        if problem:
            yield Finding.error("haproxy.hostname", problem,
                                "write the appliance's fully qualified name, e.g. haproxy01.test.corp.")
    if hp.dataplane_port is not None and not 1 <= hp.dataplane_port <= 65535:
        yield Finding.error("haproxy.dataplane_port", f"port {hp.dataplane_port} is out of range.",
                            "use a port from 1 to 65535.")
    if hp.boot_timeout is not None and hp.boot_timeout < 1:
        yield Finding.error("haproxy.boot_timeout", f"{hp.boot_timeout} seconds leaves the appliance no time to boot.",
                            "give it at least the article's few minutes, e.g. 600.")
    elif hp.boot_timeout is not None and hp.boot_timeout > 86400:
        yield Finding.error("haproxy.boot_timeout", f"{hp.boot_timeout} seconds is out of range: at most a day (86400).",
                            "give it the article's few minutes, e.g. 600.")
    if hp.ssh_host_key and not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", hp.ssh_host_key.strip()):
        yield Finding.error("haproxy.ssh_host_key", "is not a SHA-256 host key fingerprint (SHA256: and 43 "
                                                    "base64 characters).",
                            "paste what `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints on the appliance's "
                            "console, e.g. SHA256:s0cj6NAPLS+0JiagT0LGro+0D7cdtXbaF+BsM+5t56A.")
    if hp.ssh_trust_on_first_use and (hp.ssh_known_hosts or hp.ssh_host_key):
        yield Finding.error("haproxy.ssh_trust_on_first_use", "is true while a known_hosts file or a pinned key is "
                                                              "set; it would be ignored.",
                            "remove ssh_trust_on_first_use: true.")
    elif hp.ssh_trust_on_first_use:
        yield Finding.warning("haproxy.ssh_trust_on_first_use", "the appliance's SSH host key will be trusted on "
                                                                "first use: nothing proves it is the appliance's.",
                              "pin it in haproxy.ssh_host_key once you have read it on the appliance's console.")
    if bool(hp.ca_cert_file) != bool(hp.ca_key_file):
        given, missing = ("ca_cert_file", "ca_key_file") if hp.ca_cert_file else ("ca_key_file", "ca_cert_file")
        yield Finding.error(f"haproxy.{missing}", f"is missing while haproxy.{given} is set: the appliance takes "
                                                 f"its own CA only as a certificate and its key together.",
                            f"set haproxy.{missing} too, or remove haproxy.{given} to let the appliance make its CA.")


def _check_libraries(site):
    libraries = site.content_libraries
    if libraries is None or libraries.kubernetes is None or libraries.haproxy is None:
        return
    if libraries.kubernetes.name and libraries.kubernetes.name.lower() == libraries.haproxy.name.lower():
        yield Finding.error("content_libraries.haproxy.name",
                            f"is also the subscribed library's name ({libraries.haproxy.name!r}).",
                            "give the local library its own name, e.g. HAProxy.")
    thumbprint = libraries.kubernetes.ssl_thumbprint
    if thumbprint and not SHA1_FINGERPRINT.match(thumbprint):
        yield Finding.error("content_libraries.kubernetes.ssl_thumbprint",
                            f"{shown(thumbprint)} is not a SHA-1 certificate fingerprint: vCenter takes a subscribed "
                            f"library's as 20 bytes in hex, colon-separated (AA:BB:...).",
                            "paste what `openssl x509 -noout -fingerprint -sha1` prints for the subscription server's "
                            "certificate, after 'Fingerprint=', or remove the key (null) if vCenter does not ask.")
    url = libraries.kubernetes.subscription_url
    if url:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            yield Finding.error("content_libraries.kubernetes.subscription_url", "must be an https URL.",
                                "e.g. https://wp-content.vmware.com/v2/latest/lib.json.")
        elif parts.username or parts.password:
            yield Finding.error("content_libraries.kubernetes.subscription_url",
                                "holds credentials; they would be shown in every plan and report.",
                                "remove user:password@ from the URL.")
    if re.match(r"^https?://", libraries.haproxy.ova or ""):
        yield Finding.error("content_libraries.haproxy.ova",
                            "a URL is not supported: the OVA's manifest is checked locally first.",
                            "download the OVA (e.g. haproxy-v0.1.10.ova) and give its path, relative to the site file.")
