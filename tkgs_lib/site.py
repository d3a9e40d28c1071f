"""The site file: one YAML file describing one deployment.

The dataclasses below are the only place a field's meaning is written down
(``doc=``); ``tkgs-runbook fields`` and the README's field table are generated
from them. Loading is strict but never throws a traceback at the user: an
unreadable or non-mapping file raises :class:`SiteError`; every other mistake
(unknown key, secret, wrong type, missing value) becomes an error
:class:`~tkgs_lib.findings.Finding` on ``Site.findings`` that names the field,
and the offending value is left at its default so later rules can still run.

Address semantics (is this a network address, is that gateway inside it) are
not checked here but by :mod:`tkgs_lib.network`, which reads these values as
the strings the person wrote.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .errors import SiteError
from .findings import Finding

MISSING = dataclasses.MISSING


def doc(text: str, default: Any = MISSING, *, path: bool = False, example: Any = None):
    """A dataclass field with its documentation; ``path`` fields resolve against the site file."""
    meta = {"doc": text, "path": path, "example": example}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


Deployment = Literal["default", "frontend"]
Download = Literal["immediately", "on_demand"]


@dataclass
class VCenter:
    server: str = doc("vCenter's host name or address, as its certificate names it.")
    username: str = doc("vCenter user, e.g. administrator@vsphere.local.")
    datacenter: str = doc("Datacenter that holds the cluster.")
    cluster: str = doc("Cluster the appliance and, later, Workload Management run on.")
    distributed_switch: str = doc("Distributed switch (VDS) that carries the three port groups.")
    datastores: list[str] = doc(
        "Datastores to tag for the Tanzu storage policy; the first also backs the content libraries.")
    port: int = doc("vCenter's HTTPS port.", 443)
    password_env: str = doc(
        "Environment variable holding vCenter's password; when unset the notebook asks for it.",
        "TKGS_VCENTER_PASSWORD")
    ca_file: Optional[str] = doc(
        "PEM bundle that signs vCenter's certificate. With thumbprint also null, the system's CA "
        "store is trusted, as a browser would.", None, path=True)
    thumbprint: Optional[str] = doc(
        "vCenter's pinned SHA-256 certificate fingerprint (AA:BB:...), instead of a CA file.", None)
    insecure: bool = doc(
        "Skip TLS verification entirely. Dangerous: only for a throwaway lab; every connection warns.",
        False)


@dataclass
class Network:
    vlan: int = doc("VLAN id of the network's distributed port group (0-4094; 0 is untagged).")
    portgroup: str = doc("Name of the distributed port group.")
    cidr: str = doc("The network, written as its network address with prefix, e.g. 10.64.2.0/23.")
    gateway: str = doc("The network's gateway: inside the network, not its network or broadcast address.")


@dataclass
class WorkloadNetwork(Network):
    ranges: list[str] = doc(
        "Address ranges (first-last) Tanzu hands to workload VMs; must avoid gateway and appliance.",
        [], example="10.64.8.50-10.64.15.150")


@dataclass
class Networks:
    management: Network = doc("Where the appliance is administered (SSH) and its Data Plane API listens.")
    workload: WorkloadNetwork = doc("Where the Kubernetes node VMs live.")
    frontend: Optional[Network] = doc(
        "Where load-balanced virtual IPs live (frontend deployment only; may be the workload network itself).",
        None)


@dataclass
class Storage:
    tag_category: str = doc("Tag category (associable to datastores) for the Tanzu datastore tag.")
    tag: str = doc("Tag attached to each datastore in vcenter.datastores.")
    policy: str = doc("Name of the tag-based VM storage policy that requires the tag.")


@dataclass
class SubscribedLibrary:
    name: str = doc("Name of the subscribed content library for Tanzu Kubernetes releases.")
    subscription_url: str = doc("Subscription URL, e.g. https://wp-content.vmware.com/v2/latest/lib.json.")
    download: Download = doc("When content is downloaded: immediately or on_demand.", "immediately")
    ssl_thumbprint: Optional[str] = doc(
        "The subscription server's certificate fingerprint, if vCenter asks for it.", None)


@dataclass
class LocalLibrary:
    name: str = doc("Name of the local content library that holds the HAProxy OVA.")
    ova: str = doc("The HAProxy OVA file, as downloaded (a path, relative to the site file).", path=True)
    item: str = doc("Name of the library item for the OVA, e.g. haproxy-v0.1.10.")


@dataclass
class ContentLibraries:
    kubernetes: SubscribedLibrary = doc("The subscribed library Tanzu fetches node images from.")
    haproxy: LocalLibrary = doc("The local library holding the HAProxy appliance OVA.")
    datastore: Optional[str] = doc("Datastore backing both libraries; null: the first of vcenter.datastores.", None)


@dataclass
class HAProxy:
    vm_name: str = doc("Name of the appliance VM.")
    hostname: str = doc("The appliance's fully qualified host name, e.g. haproxy01.test.corp.")
    management_ip: str = doc("Appliance address on the management network, with prefix (10.64.2.10/23).")
    workload_ip: str = doc("Appliance address on the workload network, with prefix.")
    nameservers: list[str] = doc("DNS servers (IPv4 addresses) for the appliance.")
    load_balancer_ranges: list[str] = doc(
        "CIDR blocks of virtual IPs, written verbatim to the appliance's anyip-routes.cfg.",
        example="10.64.1.0/24")
    deployment: Deployment = doc(
        "OVA deployment option: frontend (3 NICs) or default (2 NICs; virtual IPs on the workload network).",
        "frontend")
    frontend_ip: Optional[str] = doc("Appliance address on the frontend network, with prefix (frontend only).", None)
    dataplane_port: int = doc("TCP port of the Data Plane API on the management address.", 5556)
    dataplane_username: str = doc("Data Plane API user (not root).", "admin")
    dataplane_password_env: str = doc(
        "Environment variable holding the Data Plane API password.", "TKGS_HAPROXY_DATAPLANE_PASSWORD")
    root_password_env: str = doc(
        "Environment variable holding the appliance's root password.", "TKGS_HAPROXY_ROOT_PASSWORD")
    permit_root_login: bool = doc("Allow root to log in over SSH (the article: yes, to check the appliance).", True)
    ca_cert_file: Optional[str] = doc(
        "PEM CA certificate for the appliance to use; with ca_key_file null both, it makes its own.", None, path=True)
    ca_key_file: Optional[str] = doc("PEM private key of that CA.", None, path=True)


@dataclass
class Site:
    site: str = doc("Short name of the deployment; names run folders.")
    vcenter: VCenter = doc("How to reach vCenter and which inventory objects to use.")
    networks: Networks = doc("The three networks of the article.")
    haproxy: HAProxy = doc("The appliance's vApp properties (passwords by environment variable only).")
    storage: Optional[Storage] = doc("The datastore tag and storage policy.", None)
    content_libraries: Optional[ContentLibraries] = doc("The two content libraries.", None)

    # Not site keys: where the file came from and what loading it found.
    source: Optional[Path] = field(default=None, metadata={"internal": True}, compare=False)
    findings: list[Finding] = field(default_factory=list, metadata={"internal": True}, compare=False)

    def secret_env_fields(self):
        """(field, environment variable name) of every secret the site names, e.g.
        ("vcenter.password_env", "TKGS_VCENTER_PASSWORD")."""
        if self.vcenter is not None:
            yield "vcenter.password_env", self.vcenter.password_env
        if self.haproxy is not None:
            yield "haproxy.dataplane_password_env", self.haproxy.dataplane_password_env
            yield "haproxy.root_password_env", self.haproxy.root_password_env


# --- loading ---------------------------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """YAML as a person means it: a duplicate key is an error, and whole numbers are decimal.

    YAML 1.1 reads `vlan: 026` as octal 22 and `1:20` as 80, and lets a second `gateway:`
    silently win; none of that may pass unnoticed in a site file."""

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)  # resolve `<<: *anchor` merges first, as SafeLoader does
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # a list or mapping used as a key
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (the second would silently replace the first)",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_StrictLoader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(loader.construct_scalar(node), 10))


# A key that would hold a secret itself; `*_env` and `*_file` keys only name where one lives.
_SECRET_WORDS = "password|passwd|pwd|secret|token"
_SECRET_KEY = re.compile(rf"^(.*_)?({_SECRET_WORDS})$|^(api_)?key$", re.IGNORECASE)


def is_secret_key(name: str) -> bool:
    """A site key whose name says it would hold a secret itself (``*_env`` and ``*_file`` keys don't)."""
    return bool(_SECRET_KEY.match(name))


def mentions_secret(name: str) -> bool:
    """Any name with a secret's word in it (``root_password_text`` too): stricter, for widget values."""
    return bool(re.search(_SECRET_WORDS, name, re.IGNORECASE)) or is_secret_key(name)


def load_site(path: str | Path) -> Site:
    """Read a site file. Raises SiteError when it cannot be read or is not a YAML mapping."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SiteError(f"{path}: no such site file.") from None
    except IsADirectoryError:
        raise SiteError(f"{path}: is a folder; give the path of a site file (YAML).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteError(f"{path}: cannot be read ({exc}).") from None
    return parse_site(text, source=path)


def parse_site(text: str, source: Optional[Path] = None) -> Site:
    """Parse site YAML. Structure errors raise SiteError; field errors land on ``Site.findings``."""
    where = str(source) if source else "site"
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SiteError(f"{where}: is not valid YAML{at}: {problem}.") from None
    except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, or nesting 3000 deep
        raise SiteError(f"{where}: cannot be read as a site file: {str(exc)[:120]}.") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise SiteError(f"{where}: a site file must be a YAML mapping of keys (site, vcenter, networks, "
                        f"haproxy...), but this one is {kind}.")
    base = source.resolve().parent if source else Path.cwd()
    findings: list[Finding] = []
    site = _build(Site, data, "", base, findings)
    site.source = source.resolve() if source else None
    from .site_checks import site_checks  # they read a built Site; they live apart from loading

    site.findings = findings + site_checks(site)
    return site


def _build(cls: type, data: Any, prefix: str, base: Path, findings: list[Finding]):
    """Build dataclass ``cls`` from a mapping, reporting every problem as a finding."""
    if not isinstance(data, dict):
        findings.append(Finding.error(prefix, f"must be a mapping of keys, not {_show(data)}.",
                                      f"write the keys of {prefix} indented below it."))
        data = {}
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(key, str) and is_secret_key(key):
            findings.append(Finding.error(
                path, "a site file must not hold a secret: it is shared, committed and passed to notebooks.",
                f"remove it, put the secret in an environment variable and name that variable with "
                f"`{key}_env`."))
            continue
        if key not in known:
            close = _closest(str(key), known)
            hint = f"did you mean `{close}`?" if close else f"the keys here are: {', '.join(known)}."
            findings.append(Finding.error(path, "unknown key.", f"remove it or fix its spelling; {hint}"))
            continue
        f = known[key]
        value = _convert(hints[key], raw, path, f, base, findings)
        if _is_required(f) and value in ("", []):
            findings.append(Finding.error(path, "is required but empty.", _what_to_add(key, f)))
            value = _BAD
        values[key] = value
    for name, f in known.items():
        if name in values and values[name] is not _BAD:
            continue
        if name not in values and _is_required(f):
            path = f"{prefix}.{name}" if prefix else name
            findings.append(Finding.error(path, "is required but missing.", _what_to_add(name, f)))
        values[name] = _placeholder(hints[name], f)
    return cls(**values)


def _is_required(f) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _what_to_add(name: str, f) -> str:
    example = f.metadata.get("example")
    return f"add `{name}:` ({f.metadata['doc']})" + (f", e.g. {example}" if example else "")


_BAD = object()  # a value that failed conversion; replaced by a placeholder


def _convert(hint, raw, path: str, f, base: Path, findings: list[Finding]):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType) and type(None) in args:
        if raw is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)

    def bad(expected: str, fix: str):
        findings.append(Finding.error(path, f"expected {expected}, got {_show(raw)}.", fix))
        return _BAD

    if dataclasses.is_dataclass(hint):
        return _build(hint, raw if raw is not None else {}, path, base, findings)
    if origin is Literal:
        if raw in args:
            return raw
        return bad(" or ".join(repr(a) for a in args), f"write one of: {', '.join(args)}.")
    if origin is list:
        (item,) = args
        if raw is None:
            return []
        items = raw if isinstance(raw, list) else [raw]  # a lone value is a one-item list
        out = []
        for i, value in enumerate(items):
            converted = _convert(item, value, f"{path}[{i}]", f, base, findings)
            if converted is not _BAD:
                out.append(converted)
        return out
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        return bad("true or false", "write true or false.")
    if hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) < 10**9:
            return raw
        if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,9}", raw.strip()):
            return int(raw.strip())
        return bad("a whole number", "write a whole number (digits 0-9) without quotes.")
    if hint is str:
        if isinstance(raw, bool) or raw is None or isinstance(raw, (dict, list)):
            return bad("a text value", "write a single value (quote it if it looks like a number).")
        text = str(raw).strip()
        if f.metadata.get("path") and text and not re.match(r"^https?://", text):
            try:
                return str((base / Path(text).expanduser()).resolve())
            except (OSError, RuntimeError, ValueError) as exc:  # ~nosuchuser, a NUL byte...
                return bad("a file path", f"write a plain path ({exc}).")
        return text
    raise TypeError(f"unsupported field type {hint!r} at {path}")  # a programming error


def _placeholder(hint, f):
    """The value a bad or missing field takes so later rules can run: its default, or empty."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    if dataclasses.is_dataclass(hint):
        return None
    if typing.get_origin(hint) is list:
        return []
    if hint is int:
        return None
    return ""


def _show(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _closest(key: str, known) -> Optional[str]:
    import difflib

    matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


# --- field documentation ---------------------------------------------------------------------

def field_docs(cls: type = Site, prefix: str = "") -> list[dict]:
    """Every site key with its type, default and meaning, in file order."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        path = f"{prefix}.{f.name}" if prefix else f.name
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        target = inner[0] if typing.get_origin(hint) in (Union, types.UnionType) else hint
        if f.default is not MISSING:
            default = "null" if f.default is None else str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
        elif f.default_factory is not MISSING:
            default = "[]"
        else:
            default = "(required)"
        rows.append({"key": path, "type": _type_name(hint), "default": default, "meaning": f.metadata["doc"]})
        if dataclasses.is_dataclass(target):
            rows.extend(field_docs(target, path))
    return rows


def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " or null"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is Literal:
        return " | ".join(args)
    if dataclasses.is_dataclass(hint):
        return "mapping"
    return {str: "text", int: "number", bool: "true/false"}.get(hint, getattr(hint, "__name__", str(hint)))
